#!/usr/bin/python3
"""An independent STOMP publisher for the tests (stomp.py, not hookbus).

    publish.py HOST PORT LOGIN PASSCODE VHOST DESTINATION < MESSAGES.json

MESSAGES is a JSON list of {"headers": {...}, "body": TEXT}; each is sent
receipted, in order, then the client disconnects. Exits non-zero when the
broker refuses anything.
"""
import json
import signal
import sys
import threading

import stomp


class Receipts(stomp.ConnectionListener):
    def __init__(self):
        self.ids = set()
        self.errors = []
        self.arrived = threading.Condition()

    def on_receipt(self, frame):
        with self.arrived:
            self.ids.add(frame.headers.get("receipt-id"))
            self.arrived.notify_all()

    def on_error(self, frame):
        with self.arrived:
            self.errors.append(frame.headers.get("message", "ERROR"))
            self.arrived.notify_all()


def main():
    host, port, login, passcode, vhost, destination = sys.argv[1:7]
    signal.alarm(20)  # a hard stop, whatever the broker does
    messages = json.load(sys.stdin)
    connection = stomp.Connection([(host, int(port))], heartbeats=(0, 0), vhost=vhost)
    receipts = Receipts()
    connection.set_listener("receipts", receipts)
    connection.connect(login, passcode, wait=True)
    for index, message in enumerate(messages):
        receipt = "sent-%d" % index
        connection.send(destination, message["body"], headers=dict(message["headers"]), receipt=receipt)
        with receipts.arrived:
            receipts.arrived.wait_for(lambda: receipt in receipts.ids or receipts.errors, 10)
        if receipts.errors or receipt not in receipts.ids:
            sys.exit("not receipted: %s %s" % (receipt, receipts.errors))
    connection.disconnect()


if __name__ == "__main__":
    main()
