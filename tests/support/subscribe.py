#!/usr/bin/python3
"""An independent STOMP subscriber for the tests (stomp.py, not hookbus).

    subscribe.py HOST PORT LOGIN PASSCODE VHOST DESTINATION COUNT TIMEOUT_S

Subscribes, prints "READY" on its own line once the broker has receipted the
subscription, collects COUNT messages (or stops after TIMEOUT_S seconds), then
prints them as one JSON list of {"headers": {...}, "body": BASE64} and exits.
"""
import base64
import json
import signal
import sys
import threading
import time

import stomp


class Collector(stomp.ConnectionListener):
    def __init__(self, count):
        self.count = count
        self.messages = []
        self.errors = []
        self.ready = threading.Event()
        self.done = threading.Event()

    def on_receipt(self, frame):
        if frame.headers.get("receipt-id") == "subscribed":
            self.ready.set()

    def on_error(self, frame):
        self.errors.append(frame.headers.get("message", "ERROR"))
        self.ready.set()
        self.done.set()

    def on_message(self, frame):
        body = frame.body if isinstance(frame.body, bytes) else frame.body.encode()
        self.messages.append({
            "headers": dict(frame.headers),
            "body": base64.b64encode(body).decode(),
        })
        if len(self.messages) >= self.count:
            self.done.set()


def main():
    host, port, login, passcode, vhost, destination, count, timeout = sys.argv[1:9]
    count, deadline = int(count), time.monotonic() + float(timeout)
    signal.alarm(int(float(timeout)) + 5)  # a hard stop, whatever the broker does
    connection = stomp.Connection([(host, int(port))], heartbeats=(0, 0), vhost=vhost,
                                  auto_decode=False)
    collector = Collector(count)
    connection.set_listener("collector", collector)
    connection.connect(login, passcode, wait=True)
    connection.subscribe(destination=destination, id="1", ack="auto", receipt="subscribed")
    if not collector.ready.wait(max(0.1, deadline - time.monotonic())):
        sys.exit("subscription was not receipted")
    if collector.errors:
        sys.exit("broker error: " + "; ".join(collector.errors))
    print("READY", flush=True)
    collector.done.wait(max(0.1, deadline - time.monotonic()))
    connection.disconnect()
    print(json.dumps(collector.messages), flush=True)
    if collector.errors:
        sys.exit("broker error: " + "; ".join(collector.errors))


if __name__ == "__main__":
    main()
