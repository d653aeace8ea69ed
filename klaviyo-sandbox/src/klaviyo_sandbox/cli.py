"""The `klaviyo-sandbox` command line: parse the flags, check them, and serve until interrupted.

Exit codes: 0 stopped, 2 bad usage (one line on stderr). ``omniload sandbox klaviyo ...`` calls :func:`main`.
"""

from __future__ import annotations

import argparse
import errno
import sys

from .app import SandboxConfig
from .limits import Faults, parse_rate_mode
from .resources import parse_scale
from .server import serve_forever


class UsageError(Exception):
    """Bad flags: exit code 2, one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(message)


def build_parser(prog: str = "klaviyo-sandbox") -> argparse.ArgumentParser:
    k = _Parser(prog=prog, description="A Klaviyo API sandbox over generated data (revision 2026-07-15).")
    k.add_argument("--host", default="127.0.0.1")
    k.add_argument("--port", type=int, default=0, help="0: a free port")
    k.add_argument("--seed", type=int, default=1)
    k.add_argument("--account-seed", type=int, default=None,
                   help="the account's own seed (default: --seed): same records, another account")  # fmt: skip
    k.add_argument("--scale", default="small", help="tiny, small, medium, large, optionally ,resource=count")
    k.add_argument("--rate-limits", default="real", help="real, off, or xFACTOR such as x0.1")
    k.add_argument("--latency-ms", type=int, default=0)
    k.add_argument("--faults", default="", help="e.g. error=0.1,drop=0.05,slow=0.01,throttle=0.01,html403=0.01")
    k.add_argument(
        "--workers", type=int, default=1, help="processes serving one port (benchmarks; needs --rate-limits off)"
    )
    k.add_argument(
        "--visibility-delay-s",
        type=int,
        default=30,
        help="events show in GET this many sandbox seconds after they exist (default 30)",
    )
    k.add_argument(
        "--filter-precision",
        choices=["micro", "second"],
        default="second",
        help="second (default): compare filter datetimes in whole seconds, as Klaviyo",
    )
    k.add_argument(
        "--archived-visible",
        action="store_true",
        help="list archived flows and hidden images without an archived/hidden filter (Klaviyo hides them)",
    )
    k.add_argument(
        "--allow-future-filters",
        action="store_true",
        help="accept filter datetimes after the sandbox's now (Klaviyo refuses them)",
    )
    k.add_argument(
        "--revision-policy",
        choices=["lifecycle", "exact"],
        default="lifecycle",
        help="lifecycle (default): any real revision, old ones deprecated then retired (410); exact: only 2026-07-15",
    )
    k.add_argument(
        "--include-limit",
        type=int,
        default=None,
        help="an included to-many relationship names at most N records (default: all)",
    )
    k.add_argument(
        "--public-url",
        default=None,
        help="base URL written in links (else X-Forwarded-Proto/-Host, else the request's)",
    )
    k.add_argument(
        "--profile-properties-kb", type=int, default=0, help="wide profiles: N KB of text in each one's properties"
    )
    k.add_argument(
        "--same-metric-names",
        action="store_true",
        help="a metric's later copies (other integrations) carry its very name, as Klaviyo allows (default: 'X (1)')",
    )
    return k


def _serve(args: argparse.Namespace) -> None:
    try:
        parse_scale(args.scale)
        parse_rate_mode(args.rate_limits)
        Faults.parse(args.faults)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.visibility_delay_s < 0:
        raise UsageError(f"--visibility-delay-s: {args.visibility_delay_s} is below 0")
    if args.include_limit is not None and args.include_limit < 1:
        raise UsageError(f"--include-limit: {args.include_limit} is below 1")
    if args.profile_properties_kb < 0:
        raise UsageError(f"--profile-properties-kb: {args.profile_properties_kb} is below 0")
    cfg = SandboxConfig(seed=args.seed, account_seed=args.account_seed, scale=args.scale, rate_limits=args.rate_limits, latency_ms=args.latency_ms,
                        faults=args.faults, visibility_delay_s=args.visibility_delay_s,
                        filter_precision=args.filter_precision, public_url=args.public_url,
                        archived_visible=args.archived_visible, refuse_future_filters=not args.allow_future_filters,
                        revision_policy=args.revision_policy, include_limit=args.include_limit,
                        profile_properties_kb=args.profile_properties_kb,
                        same_metric_names=args.same_metric_names)  # fmt: skip
    if args.workers < 1 or (args.workers > 1 and args.rate_limits != "off"):
        raise UsageError(
            f"--workers {args.workers}: use 1, or more only with --rate-limits off (workers do not share counters)"
        )
    try:
        serve_forever(cfg, args.host, args.port, args.workers)
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        raise UsageError(f"--host {args.host} --port {args.port}: cannot listen ({exc.strerror}); "
                         "choose another port, or --port 0 for a free one") from None  # fmt: skip


def main(argv: list[str] | None = None, prog: str = "klaviyo-sandbox") -> int:
    """Run the sandbox with ``argv`` (default: the process's); return the exit code."""
    try:
        _serve(build_parser(prog).parse_args(argv))
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
