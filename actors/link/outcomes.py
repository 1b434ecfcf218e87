"""OutcomeReports: finished jobs until the coordinator settles them, and how they are sent.

With the `outcomes` extension at most one such frame is unanswered at a time, the way one fetch
is: outcomes that finish meanwhile go together once it is answered. A lone job is reported at
once, and a busy worker batches by itself, with no timer. Without it, one `ack`/`fail` per job
(the base protocol). An outcome is dropped only once settled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from actors.link.requests import Pending
from actors.worker_mail import Outcome
from transport.codec import MAX_MESSAGE_SIZE_BYTES

log = logging.getLogger(__name__)

# request(kind, body, context, size_limit): False, and nothing sent, over size_limit bytes
Request = Callable[[str, dict[str, Any], Any, "int | None"], bool]


class OutcomeReports:
    """The unsettled outcomes of one worker, reported through `request` while `live()`.

    What is in flight is read from the link's `pending` requests, so a request that dies with
    its connection or expires puts its outcomes back up for the next report by itself.
    """

    def __init__(
        self, request: Request, live: Callable[[], bool], pending: dict[int, Pending]
    ) -> None:
        self._request = request
        self._live = live
        self._pending = pending
        self.unreported: dict[str, Outcome] = {}
        self.batch = False  # the coordinator takes `outcomes` (announced at hello)
        self.max_message_size = MAX_MESSAGE_SIZE_BYTES  # the coordinator's, once announced

    def add(self, items: Iterable[Outcome]) -> None:
        for outcome in items:
            self.unreported[outcome.job_id] = outcome
        self.report()

    def keep_only(self, job_ids: frozenset[str]) -> None:
        """Registered again: the coordinator resumed `job_ids`; the rest are not ours."""
        for job_id in [job_id for job_id in self.unreported if job_id not in job_ids]:
            del self.unreported[job_id]

    def report(self) -> None:
        """Report every unsettled outcome that no request in flight carries: new ones, and
        those whose reply was lost or said `internal`."""
        if not self._live():
            return
        in_flight: set[str] = set()
        frame_unanswered = False
        for pending in self._pending.values():
            if pending.kind == "outcome":
                in_flight.add(pending.context)
            elif pending.kind == "outcomes":
                in_flight.update(pending.context)
                frame_unanswered = True
        if frame_unanswered and self.batch:
            return
        stray = [o for job_id, o in self.unreported.items() if job_id not in in_flight]
        if stray:
            self._send(stray)

    def settle(self, job_id: str, answer: dict[str, Any]) -> None:
        """The coordinator answered one outcome: done, or refused with `code`."""
        outcome = self.unreported.get(job_id)
        if outcome is not None and answer.get("code") == "too_large":
            self._too_large(outcome, answer.get("message", ""))
        else:
            self.unreported.pop(job_id, None)  # accepted, or not_owner / unknown_job

    def on_reply(self, body: dict[str, Any], job_ids: Any) -> None:
        results = body.get("results")
        if not isinstance(results, list) or len(results) != len(job_ids):
            log.error("outcomes reply with %r results for %d jobs", results, len(job_ids))
            return  # still unreported: sent again with the next beat
        for job_id, result in zip(job_ids, results, strict=True):
            self.settle(job_id, result if isinstance(result, dict) else {})
        self.report()  # what finished while this frame was out

    def refused(self, kind: str, body: dict[str, Any], context: Any) -> None:
        """An `ack`/`fail` (`outcome`) or an `outcomes` frame answered with an error."""
        code = body.get("code")
        if kind == "outcome":
            self.settle(context, body)
        elif code == "too_large":
            self._split([self.unreported[i] for i in context if i in self.unreported])
        elif code == "internal":
            pass  # nothing changed and it may pass: reported again with the next beat
        else:
            # Refused as a whole (bad_request, ...): this coordinator does not take them after
            # all, so speak ack/fail for the rest of the session. Their answers settle every
            # job, so none is re-sent forever.
            log.warning("outcomes refused (%s %s); reporting one by one", code, body.get("message"))
            self.batch = False
            self.report()

    def _send(self, outcomes: Sequence[Outcome]) -> None:
        """One `outcomes` frame when the coordinator takes them (halved until each fits its
        max_message_size), else one `ack`/`fail` per job."""
        if not self.batch:
            for outcome in outcomes:
                kind = "fail" if outcome.error else "ack"
                self._request(kind, _outcome_item(outcome), outcome.job_id, None)
            return
        body = {"outcomes": [_outcome_item(o) for o in outcomes]}
        job_ids = tuple(outcome.job_id for outcome in outcomes)
        if not self._request("outcomes", body, job_ids, self.max_message_size):
            self._split(outcomes)

    def _split(self, outcomes: Sequence[Outcome]) -> None:
        """Outcomes too large for one frame: send each half on its own; a single one that
        cannot fit ends its job as ResultTooLarge."""
        if len(outcomes) > 1:
            half = len(outcomes) // 2
            self._send(outcomes[:half])
            self._send(outcomes[half:])
        elif outcomes:
            self._too_large(outcomes[0], f"larger than max_message_size {self.max_message_size}")

    def _too_large(self, outcome: Outcome, message: str) -> None:
        """The coordinator cannot take this result: end the job with the reason rather than
        letting its lease run out."""
        error = {"type": "ResultTooLarge", "message": message, "retryable": False}
        self.add((Outcome(outcome.job_id, outcome.attempt, error=error),))


def _outcome_item(outcome: Outcome) -> dict[str, Any]:
    """The fields of an `ack` or `fail` about one job (also one item of `outcomes`)."""
    item: dict[str, Any] = {"job_id": outcome.job_id, "attempt": outcome.attempt}
    if outcome.error is None:
        item["result"] = outcome.result
    else:
        item["error"] = outcome.error
    return item
