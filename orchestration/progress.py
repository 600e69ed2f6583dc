"""A Dagster logger that prints one line per step: what runs, what finished, what failed.

Used by ``offshoring run`` so a long run shows progress without Dagster's full
debug stream.
"""


import logging
import sys
import time

import dagster as dg


class _StepLines(logging.Handler):
    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream or sys.stdout
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "dagster_event", None)
        if event is None:
            return
        kind = event.event_type_value
        step = event.step_key or ""
        if kind == "STEP_START":
            self.started[step] = time.perf_counter()
            self._print(f"  - {step} ...")
        elif kind == "STEP_SUCCESS":
            dt = time.perf_counter() - self.started.pop(step, time.perf_counter())
            self._print(f"  ok {step} ({dt:.1f} s)")
        elif kind == "STEP_FAILURE":
            # the cause is printed once, in plain words, by the caller (failure_summary)
            self._print(f"  FAILED {step}")
        elif kind == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            evaluation = getattr(data, "evaluation", data)
            if evaluation is not None and not getattr(evaluation, "passed", True):
                sev = getattr(getattr(evaluation, "severity", None), "value", "ERROR")
                self._print(f"  check {evaluation.asset_key.to_user_string()}:"
                            f"{evaluation.check_name} did not pass ({sev})")

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


@dg.logger(description="One line per step: started, finished (with time), failed.")
def step_progress(init_context) -> logging.Logger:
    lg = logging.getLogger("offshoring.progress")
    lg.setLevel(logging.DEBUG)
    lg.handlers = [_StepLines()]
    lg.propagate = False
    return lg


PROGRESS_RUN_CONFIG = {"loggers": {"step_progress": {}}}
