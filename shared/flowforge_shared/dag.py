"""The job graph of a workflow: a job depends on the jobs that write the tables it reads, and
on the jobs it names in ``dependsOn``. Used when a job is saved (cycles are refused) and when a
run is planned (ready jobs are dispatched, independent ones in parallel)."""

from __future__ import annotations

from collections.abc import Mapping

from flowforge_shared.contracts.jobs import JobConfig


def dependencies(jobs: Mapping[str, JobConfig]) -> dict[str, set[str]]:
    """job id -> the ids of the jobs it must wait for."""
    writers: dict[str, set[str]] = {}
    for job_id, job in jobs.items():
        destination = job.destination
        if destination:
            writers.setdefault(destination[1], set()).add(job_id)
    graph: dict[str, set[str]] = {}
    for job_id, job in jobs.items():
        needs: set[str] = set()
        for table in job.input_tables:
            needs |= writers.get(table, set())
        needs |= {dep for dep in job.depends_on or [] if dep in jobs}
        needs.discard(job_id)
        graph[job_id] = needs
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One cycle as a list of ids (first id repeated at the end), or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt, black) == grey:
                return stack[stack.index(nxt) :] + [nxt]
            if colour.get(nxt) == white:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = black
        return None

    for node in sorted(graph):
        if colour[node] == white:
            found = visit(node)
            if found:
                return found
    return None


def upstream_closure(graph: Mapping[str, set[str]], selected: set[str]) -> set[str]:
    """The selected jobs plus everything they need, transitively."""
    result: set[str] = set()
    pending = list(selected)
    while pending:
        node = pending.pop()
        if node in result:
            continue
        result.add(node)
        pending.extend(graph.get(node, ()))
    return result
