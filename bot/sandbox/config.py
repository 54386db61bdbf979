"""The sandbox's settings: account, timings, URL lifetimes and limits, all changeable at run time."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Tier = Literal["free", "creator", "pro", "business"]


class SandboxConfig(BaseModel):
    """Live settings of one sandbox; handlers read them on every request, so changes apply at once.

    `credits` is the account balance itself: creating a job debits it and settlement or refunds
    credit it back, so a test can set `config.credits = 10` to provoke a 402. `queue_seconds`
    and the render timings are read when a job is created, so changing them affects later jobs only.

    Render time: `render_seconds` for every job, unless `render_seconds_per_frame > 0`; then a
    job renders for `render_overhead_seconds + frames × render_seconds_per_frame × (1 ± noise)`,
    where frames are its create-time estimate (the window at min(30, max_fps_limit) fps, known
    before anything is rendered) and the noise is uniform in `[-render_noise, +render_noise]`,
    drawn from an RNG seeded with `render_seed` when the sandbox is made, one draw per job.
    """

    model_config = ConfigDict(validate_assignment=True)

    api_key: str = "sandbox-key"
    credits: int = 1_000_000
    queue_seconds: float = Field(default=0.0, ge=0)
    render_seconds: float = Field(default=0.0, ge=0)
    render_seconds_per_frame: float = Field(default=0.0, ge=0)
    render_overhead_seconds: float = Field(default=0.0, ge=0)
    render_noise: float = Field(default=0.0, ge=0, le=1)
    render_seed: int = 0
    upload_url_ttl: float = Field(default=900.0, gt=0)
    download_url_ttl: float = Field(default=3600.0, gt=0)
    max_upload_bytes: int = Field(default=10 * 2**30, ge=0)
    tier: Tier = "creator"
    email: str = "sandbox@example.com"
    max_concurrent_renders: int = Field(default=4, ge=1)
    # Off: no `X-Magic-Hour-Sandbox` header, like an endpoint that doesn't say it is the sandbox.
    identify: bool = True
    # Above 1: the create answer charges this much more than Magic Hour documents (an API that
    # holds more at queue time), to test how a client reconciles. Settles to the real frames.
    create_surcharge: float = Field(default=1.0, ge=1.0)
    # The frame rate a YouTube source has (the sandbox never fetches one): its render and final
    # charge follow min(youtube_fps, max_fps_limit); the create estimate stays at 30 fps.
    youtube_fps: float = Field(default=30.0, gt=0, le=240)
    # Webhooks (`bot.sandbox.webhooks`): where to POST a signed event when a render ends (None:
    # none sent), the signing secret, and a switch that loses every event.
    webhook_url: str | None = None
    webhook_secret: str = "sandbox-webhook-secret"  # noqa: S105 - the sandbox's own, not a real secret
    webhooks_lost: bool = False
