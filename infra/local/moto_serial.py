"""moto server handling one request at a time.

moto's own `moto_server` serves requests on many threads, and its DynamoDB does not isolate a
conditional write or a transaction from a concurrent one: two racing conditional puts can both
succeed, which real DynamoDB never allows. Serving requests one at a time restores the
per-request atomicity pushmail's ordering rules rely on, so the race tests test pushmail and not
the emulator. (LocalStack and AWS need no such help.)

One exception: SQS ReceiveMessage may wait (long polling) for a message, so it runs beside the
others rather than holding them all up; it changes no DynamoDB state.

    python moto_serial.py HOST PORT
"""

import sys
import threading

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def one_at_a_time(app):
    lock = threading.Lock()

    def serve(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET") == "AmazonSQS.ReceiveMessage":
            return app(environ, start_response)
        with lock:
            # The whole response is made inside the lock, not only its start.
            return list(app(environ, start_response))

    return serve


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, one_at_a_time(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
