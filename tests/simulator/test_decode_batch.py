"""DecodeBatch keeps the batch's context sum as a running total; checked against the sum worked out
sequence by sequence (prompt + tokens made so far, padding slots of a static batch included). Only a
decode step brings a finish due."""
from hypothesis import given, settings, strategies as st

from simulator.decode_batch import DecodeBatch
from simulator.requests_state import RequestTable

OPERATIONS = st.lists(st.tuples(st.sampled_from(("join", "advance", "preempt")), st.integers(1, 7)),
                      min_size=1, max_size=60)


def brute_context(batch: DecodeBatch, table: RequestTable, padding: dict) -> int:
    """Each running sequence's context: prompt + tokens at join + steps since; a padding slot keeps
    growing from the context it finished at."""
    running = sum(table.input_tokens[rid] + generated + batch.step - join_step
                  for rid, (_, join_step, generated) in batch.running.items())
    return running + sum(context + batch.step - step for context, step in padding.values())


@settings(max_examples=200, deadline=None)
@given(OPERATIONS, st.booleans())
def test_context_sum_matches_the_sequences_it_holds(operations, static):
    count = 40
    table = RequestTable([0.0] * count, [10 + 3 * i for i in range(count)], [2 + i % 9 for i in range(count)])
    batch = DecodeBatch(table, holds_finished_slots=static)
    padding, next_rid = {}, 0
    for operation, amount in operations:
        if operation == "join" and next_rid < count:
            table.generated[next_rid] = 1          # its prompt is in KV and its first token out
            batch.join(next_rid)
            next_rid += 1
            # a join alone never brings a finish due (it has a token left to make): the engine relies on
            # it to skip looking for finishes after a prompt-only step
            assert batch.pop_finished() == []
        elif operation == "advance" and batch.size:
            steps = int(min(amount, batch.steps_to_next_finish()))
            batch.advance(steps)
            for rid in batch.pop_finished():
                padding[rid] = (table.input_tokens[rid] + table.output_tokens[rid], batch.step)
            if static and not batch.running:
                padding.clear()                    # the static batch ended: every slot freed
        elif operation == "preempt" and batch.running and not static:
            batch.preempt_newest()
        assert batch.context == brute_context(batch, table, padding if static else {})
        assert batch.size == len(batch.running) + (len(padding) if static else 0)
