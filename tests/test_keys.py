"""Every key a job writes is named in keys.py and lies under the job's hash tag."""

from __future__ import annotations

from countermand.providers.fake import FakeSpec
from countermand.settings import Settings
from countermand.store import keys
from countermand.verify import verify_job
from tests.conftest import run
from tests.test_engine import csv, drain, fake, open_rt, submit_csv

__all__ = ["fake"]


def test_all_job_keys_names_everything_a_job_wrote(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        fast = {"chunk_size": 3, "rate": 5000.0, "tenant_rate": 5000.0}
        async with open_rt(settings.model_copy(update=fast)) as rt:
            scripts = ["ok", "flaky9", "late", "", *["ok"] * 30]
            job_id = await submit_csv(rt, csv(*scripts), verify=True)
            await drain(rt)
            assert await verify_job(rt, job_id) == "done"
            meta = await rt.store.meta(job_id)
            written = {k async for k in rt.store.redis.scan_iter(match=f"*{job_id}*")}
            named = set(keys.all_job_keys(job_id, meta.chunks, meta.total))
            assert written, "the job wrote nothing?"
            assert written <= named, written - named
            assert all(f"{{{job_id}}}" in key for key in written)  # one hash slot per job

    run(main())


def test_job_keys_share_the_hash_tag() -> None:
    job = "abc"
    tagged = [keys.job(job), keys.chunk_input(job, 1), keys.results(job, 2), keys.open_chunks(job),
              keys.failed(job), keys.to_verify(job), keys.verifier(job), keys.leases(job),
              keys.owners(job), keys.dedup(job, 3), keys.job_rate(job)]  # fmt: skip
    assert all("{abc}" in key for key in tagged)
    assert len(set(tagged)) == len(tagged)
