"""A wscodec server for the hostile-client suite, alone in its own process.

    python tests/hostile/serve_target.py FLAVOUR [JSON_OPTIONS]

FLAVOUR is ``threaded`` (:func:`wscodec.serve` with an echo handler),
``events`` (:func:`wscodec.serve_events` with an echo handler) or ``demo``
(:func:`wscodec.demo.serve_demo`). It listens on a free port of 127.0.0.1,
prints ``PORT <n>`` and serves until SIGTERM or SIGINT, so the attack
measures this process's memory only. ``WSCODEC_NO_EXTENSIONS=1`` picks the
backend as usual.
"""

from __future__ import annotations

import json
import logging
import resource
import signal
import sys
from typing import Any

from wscodec import serve, serve_events
from wscodec.cli import EchoHandler, echo_handler
from wscodec.demo import serve_demo


def make_server(flavour: str, options: dict) -> Any:
    if flavour == "threaded":
        return serve(echo_handler, "127.0.0.1", 0, **options)
    if flavour == "events":
        return serve_events(EchoHandler, "127.0.0.1", 0, **options)
    if flavour == "demo":
        return serve_demo("127.0.0.1", 0, **options)
    raise SystemExit(f"unknown flavour {flavour!r}: threaded, events or demo")


def main() -> None:
    flavour = sys.argv[1]
    options = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    # Options of this script, not of the server: "log_file" (the log goes
    # there instead of stderr, for a test to count its lines) and
    # "rlimit_nofile" (the descriptor limit, set once the server listens).
    log_file = options.pop("log_file", None)
    rlimit_nofile = options.pop("rlimit_nofile", None)
    if log_file is not None:
        logging.basicConfig(level=logging.WARNING, filename=log_file)
    else:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    server = make_server(flavour, options)
    if rlimit_nofile is not None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (rlimit_nofile, hard))

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"PORT {server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
