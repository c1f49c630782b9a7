"""Consumer contracts: every consumer profile (vectors/consumers/) replayed with a
real guest from every selected build to every selected build, the same build on
both sides included: each side's QEMU gets the consumer's own commands."""

from __future__ import annotations

from qmpcompat.pytest_plugin import RecordConsumer, RunState, conclude_cell
from qmpcompat.schema.sources.live import SchemaCache
from qmpcompat.vectors.profilecheck import ProfileCase, check_profile


def test_consumer(consumer_case: ProfileCase, qmpcompat_run: RunState, schema_cache: SchemaCache,
                  record_consumer: RecordConsumer) -> None:
    profile, st = consumer_case.profile, qmpcompat_run
    result = check_profile(consumer_case, st.vectors.defects_for(profile.id), schema_cache,
                           st.timeout, st.allow_exec, st.lint_of(profile), st.rules)
    record_consumer(result)
    conclude_cell(result, f"{profile.id} {profile.name} ({result.record.get('location')}), QEMU "
                          f"{consumer_case.source.label} -> {consumer_case.destination.label}")
