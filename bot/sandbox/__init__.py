"""A local stand-in for the Magic Hour API over real HTTP, for tests, benchmarks and trying the bot.

Same endpoints, validation, statuses and `{"message": ...}` error bodies as the real API, with
presigned-style upload and download URLs on a separate storage listener, statuses that follow a
clock, credit estimates and settlement, fault switches and counters. Its render is real media but
no lip sync (see `bot.sandbox.render`).

    async with Sandbox(SandboxConfig(), data_dir=tmp_path, clock=FakeClock()) as sb:
        client_base_url = sb.base_url        # API; bearer auth with config.api_key
        sb.faults.fail("create", status=429) # etc.
        sb.faults.randomly("get_project", rate=0.2, kinds=[409, 500, 503, "malformed"], seed=1)

Behaviour worth knowing (choices where the real API is silent are marked *):

- Every response of both listeners (errors and injected faults included) carries the header
  `X-Magic-Hour-Sandbox: 1` (`SANDBOX_HEADER`), so a client knows for certain it talks to the
  sandbox and never has to guess from the URL.*
- Statuses are computed from the clock on each look: `queued` for `queue_seconds`, `rendering`
  for its render time, then a GET (or DELETE) finalises the job by awaiting its render task:
  `complete`, or `error` for a job_error fault, a bad path or bad media. No background timers.
  Bad paths and media are reported when the job would have finished.* Render time is
  `render_seconds`, or with `render_seconds_per_frame > 0`, `render_overhead_seconds + frames *
  render_seconds_per_frame * (1 ± render_noise)` (frames: the create-time estimate; noise uniform
  from an RNG seeded with `render_seed`), fixed per job at create.
- Credits (`bot.sandbox.billing`, its own rule and its own PyAV reading, never the bot's):
  `config.credits` *is* the balance. Create debits the documented estimate
  `ceil((end - start) * min(30, max_fps_limit)) * (2 if pro else 1)`; 402 if the balance is below
  it. Completion settles to the frames counted from the source: the output window is
  `[start, start + L)`, `L = min(min(end, video_end) - start, audio_seconds)`, sampled at
  `R = min(max_fps_limit, the source's fastest frame rate in the window)`, and the distinct source
  frames those samples show are charged. A constant-rate source gives exactly
  `ceil(L * min(fps, max_fps_limit))`; a sparse file (3 frames over 60 s) is charged 3, a still
  with a long sound 1, a variable-rate file its real frames (less those a cap drops). The
  account is debited or credited the difference, and may go below zero when a source renders
  more frames than the 30 fps estimate.* YouTube: `ceil(min(end - start, audio) *
  min(config.youtube_fps, max_fps_limit))` (the source's rate: 30 unless a test sets up to 60,
  while the create estimate stays at 30). Errors and cancellations are refunded in full and show `credits_charged: 0`.
  A finished project's `fps` is R.
- DELETE*: a queued/rendering job becomes `canceled` (render stopped, full refund); any job gets
  `enabled: false`, loses its download URLs and result file, and stays readable by GET. A second
  DELETE is 204 again. A job the clock says is finished is settled first, not canceled.
- Job errors: unknown `file_path` -> invalid_video_path / invalid_audio_path; any http(s) URL
  (never fetched) -> the same codes; no video stream -> invalid_video_file; no audio stream ->
  invalid_audio_file; non-YouTube `youtube_url` -> invalid_youtube_url; start past the video's
  end, or an output under 0.1 s (a shorter video or voice) -> invalid_parameters.
- Validation: schema problems are 400s with a message naming the field; an extension not
  allowed for its type is 422 listing the valid ones; standard/pro on the free tier is 403*;
  more than 120,000 estimated frames is 422*.
- Storage errors are S3-style XML (`<Error><Code>..</Code><Message>..</Message></Error>`):
  400 Authorization header present, 501 chunked, 411 no Content-Length, 403 bad or expired
  signature, 413 over `max_upload_bytes`. URL expiry follows the sandbox clock's wall time.
- Faults (`sb.faults`; precedence and seeding in `bot.sandbox.faults`), per route:
  `fail(route, status)` answers JSON `{"message"}` before auth and changes nothing (with
  `after_effect=True` the request is handled first: a create that went through but answered 504);
  `disconnect` closes the socket with no response, after the request's effect if `after_effect`
  (for "create": a billed project whose id never arrives; for "download": half the body, then
  closed); `hang` runs the request's effect, then holds the response until `release()` or the
  client leaves (storage routes are held before any work, since their responses stream);
  `malformed` handles the request and answers its status with half its JSON body (a matching
  Content-Length); `unknown_status("optimizing")` answers a project read with an undocumented
  status, the body otherwise valid; `no_charge()` leaves `credits_charged` out of a project read;
  `odd_json(route)` answers valid JSON of another shape (`{"data": <body>}`); `storm(route,
  times=N | seconds=D)` answers 500/502/503 in turn for N requests or until the sandbox clock has
  moved D; `randomly(route, rate, kinds, seed=0)` spoils each request with probability `rate`
  from a seeded RNG (kinds: HTTP statuses, answered at once with no effect, so a 429 on create
  never makes a project; "malformed", "unknown_status", "disconnect", "lost"). `job_error` ends
  the next jobs in `error`. From the command line:
  `lipsync-bot sandbox --fault get_project:500:0.2 --fault create:429:0.3 --seed 1`
  (`parse_fault_spec`, `Faults.apply`; rates on one route add up).
- Counters (`sb.counters`): requests per route (`creates`, `status_reads`, `deletes`), faulted ones
  included; `jobs_created` (creates that made a project, whatever the client heard);
  `faults_injected` by "route:kind"; bytes moved; live: `in_flight` requests and how many of
  them a hang `held`. `sb.charged(project_id)` is what the account stands charged for a project
  now and `sb.charged_total` the sum, to hold a client's ledger to.
- What clients were told: `project.last_read` is the status of the last project read a client
  received whole, and `sb.deletes` every DELETE that reached a project, with the status it found
  and that last read (to hold a client to "never delete a project you last saw complete").
  `await sb.finish_due()` finalises every render the clock says has finished, as a read would.
"""

from __future__ import annotations

from bot.sandbox.config import SandboxConfig
from bot.sandbox.counters import Counters
from bot.sandbox.faults import ROUTES, Faults, FaultSpec, Route, parse_fault_spec
from bot.sandbox.middleware import SANDBOX_HEADER
from bot.sandbox.projects import DeleteNote, Project, ReadNote, Status
from bot.sandbox.render import SANDBOX_LABEL
from bot.sandbox.server import Sandbox, serve_forever

__all__ = [
    "ROUTES",
    "SANDBOX_HEADER",
    "SANDBOX_LABEL",
    "Counters",
    "DeleteNote",
    "FaultSpec",
    "Faults",
    "Project",
    "ReadNote",
    "Route",
    "Sandbox",
    "SandboxConfig",
    "Status",
    "parse_fault_spec",
    "serve_forever",
]
