"""moto server handling one request at a time.

moto's own `moto_server` serves requests on many threads, and its DynamoDB does not isolate a
conditional write or a transaction from a concurrent one: two racing conditional puts can both
succeed, which real DynamoDB never allows. Serving requests one at a time restores the
per-request atomicity pushmail's ordering rules rely on, so the race tests test pushmail and not
the emulator. (LocalStack and AWS need no such help.)

    python moto_serial.py HOST PORT
"""

import sys

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
