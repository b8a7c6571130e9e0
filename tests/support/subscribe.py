#!/usr/bin/python3
"""An independent STOMP subscriber for the tests (stomp.py, not hookbus).

    subscribe.py HOST PORT LOGIN PASSCODE VHOST DESTINATION COUNT TIMEOUT_S [IDLE_S]

Subscribes, prints "READY" on its own line once the broker has receipted the
subscription and "FIRST" on its own line when the first message arrives, then
collects COUNT messages (or stops after TIMEOUT_S seconds). With IDLE_S it goes
on after COUNT messages until none has come for IDLE_S seconds, so duplicates
and a queue's backlog are seen too (COUNT 0: drain until idle). At the end it
prints the messages as one JSON list of {"headers": {...}, "body": BASE64} and
exits.
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
        self.last = time.monotonic()
        self.ready = threading.Event()
        self.done = threading.Event()
        self.arrived = threading.Event()
        # A queue's backlog may arrive before the receipt: FIRST waits for READY.
        self.lock = threading.Lock()
        self.announced = False

    def on_receipt(self, frame):
        if frame.headers.get("receipt-id") == "subscribed":
            self.ready.set()

    def on_error(self, frame):
        self.errors.append(frame.headers.get("message", "ERROR"))
        self.ready.set()
        self.done.set()

    def on_message(self, frame):
        body = frame.body if isinstance(frame.body, bytes) else frame.body.encode()
        with self.lock:
            self.messages.append({
                "headers": dict(frame.headers),
                "body": base64.b64encode(body).decode(),
            })
            if len(self.messages) == 1 and self.announced:
                print("FIRST", flush=True)
        self.last = time.monotonic()
        if len(self.messages) >= self.count:
            self.done.set()
        self.arrived.set()


def wait_until_idle(collector, idle, deadline):
    """After COUNT messages: returns once none came for IDLE seconds."""
    while not collector.errors:
        quiet_until = collector.last + idle
        now = time.monotonic()
        if now >= deadline or (now >= quiet_until and len(collector.messages) >= collector.count):
            return
        collector.arrived.clear()
        collector.arrived.wait(max(0.05, min(quiet_until, deadline) - now))


def main():
    host, port, login, passcode, vhost, destination, count, timeout = sys.argv[1:9]
    idle = float(sys.argv[9]) if len(sys.argv) > 9 else None
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
    collector.last = time.monotonic()
    with collector.lock:
        print("READY", flush=True)
        collector.announced = True
        if collector.messages:
            print("FIRST", flush=True)
    if idle is None:
        collector.done.wait(max(0.1, deadline - time.monotonic()))
    else:
        wait_until_idle(collector, idle, deadline)
    connection.disconnect()
    print(json.dumps(collector.messages), flush=True)
    if collector.errors:
        sys.exit("broker error: " + "; ".join(collector.errors))


if __name__ == "__main__":
    main()
