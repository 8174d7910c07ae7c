FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY countermand ./countermand
COPY worker ./worker
COPY tasks ./tasks
COPY schedules ./schedules
RUN pip install --no-cache-dir . && useradd --create-home countermand
USER countermand
ENTRYPOINT ["countermand"]
