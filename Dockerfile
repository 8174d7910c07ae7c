FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY countermand ./countermand
COPY worker ./worker
COPY tasks ./tasks
COPY schedules ./schedules
RUN pip install --no-cache-dir . && useradd --create-home countermand
USER countermand
# 8000: the HTTP API (countermand api); 9100: a worker's /metrics (countermand worker
# --metrics-port 9100); 8080: the simulator (demo profile).
EXPOSE 8000 9100 8080
ENTRYPOINT ["countermand"]
