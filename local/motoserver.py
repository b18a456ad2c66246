#!/usr/bin/env python3
"""Race-safe local DynamoDB engine: moto served by ONE thread.

Stock `moto_server` serves requests on many threads, and moto's DynamoDB
backend is not thread-safe: two conditional PutItems can both win and a
failing TransactWriteItems can erase items other writers were told were
stored. Serving moto's WSGI app with werkzeug's run_simple(threaded=False)
processes one request at a time, which makes every DynamoDB call atomic.

moto's TransactWriteItems also deep-copies every table a transaction names,
so that it can roll back, which makes each transaction cost O(table size):
a long `make dev` session slows down request after request. With one
request at a time, a rollback only needs the items the transaction touches,
so install_item_level_rollback() snapshots those items instead and lets the
table copy be the table itself. A cancelled transaction also leaves no
DynamoDB Streams record behind (moto appends one per item it applied, and
per item the rollback restores): a stream consumer sees committed changes
only, as with DynamoDB.

Persistent mode (--journal PATH, `DEV_PERSIST=1 make dev`): moto keeps its
data in memory only, so the server appends every DynamoDB write it applied
(the request of each successful PutItem, UpdateItem, TransactWriteItems,
CreateTable, ...) to a JSON-lines journal and, at start, replays the journal
before it listens. With one request served at a time the journal's order is
the order the writes were applied, so a replay rebuilds the same tables and
items; failed requests (a condition that did not hold) are not journaled
and change nothing. Trade-offs: start-up time grows with the journal (delete
the file to start empty), only DynamoDB is journaled (not SQS), and a write
is flushed to the OS, not fsynced (a machine crash can lose the last ones).

Usage: motoserver.py [--host 127.0.0.1] [--port 0] [--port-file PATH] [--journal PATH]
Port 0 picks a free port; the chosen port is written to --port-file (if
given) and printed as "listening on http://HOST:PORT" once it accepts.
"""
import base64
import io
import json
import argparse
import os
import socket
import sys


def install_item_level_rollback() -> None:
    """Make TransactWriteItems snapshot touched items, not whole tables.

    Only valid because requests are served one at a time: nothing else can
    write between the snapshot and the rollback.
    """
    import copy
    import threading

    import moto.dynamodb.models as models
    from moto.dynamodb.models.table import Table

    active = threading.local()

    class _CopyShim:
        """moto.dynamodb.models' `copy`, with table copies turned off while
        a transaction runs (moto then "restores" the live table object)."""

        def __getattr__(self, name):
            return getattr(copy, name)

        def deepcopy(self, x, memo=None):
            if getattr(active, "on", False) and isinstance(x, Table):
                return x
            return copy.deepcopy(x, memo)

    models.copy = _CopyShim()
    stock = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        # Stream records moto appends while it applies the transaction's
        # items (and while the rollback below restores them) must not
        # outlive a cancelled transaction: a stream consumer would see a
        # change that never committed (say PAYING -> PAID and back).
        streams = [(t.stream_shard, len(t.stream_shard.items))
                   for t in self.tables.values() if t.stream_shard is not None]
        saved = []
        for entry in transact_items:
            try:
                op = next(iter(entry.values()))
                name = op["TableName"]
                table = self.tables[name]
                if "Key" in op:
                    key = op["Key"]
                else:
                    key = {k: op["Item"][k] for k in (table.hash_key_attr, table.range_key_attr) if k}
                current = self.get_item(name, key)
            except Exception:  # moto reports malformed entries itself
                continue
            attrs = copy.deepcopy(current.to_json()["Attributes"]) if current else None
            saved.append((name, key, attrs))
        active.on = True
        try:
            return stock(self, transact_items)
        except Exception:
            for name, key, attrs in reversed(saved):
                if attrs is None:
                    self.delete_item(name, key)
                else:
                    self.put_item(name, attrs)
            for shard, n in streams:
                del shard.items[n:]
            raise
        finally:
            active.on = False

    models.DynamoDBBackend.transact_write_items = transact_write_items


# DynamoDB operations that change state, journaled in persistent mode.
JOURNALED = {
    "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems",
    "CreateTable", "DeleteTable", "UpdateTable", "UpdateTimeToLive",
    "TagResource", "UntagResource", "UpdateContinuousBackups",
}
JOURNAL_HEADERS = ("Authorization", "X-Amz-Target", "Content-Type", "Host", "X-Amz-Date")


def journaled_app(app, path):
    """Wrap the WSGI app so that every successful DynamoDB write is appended
    to the journal at path."""
    out = open(path, "a", encoding="utf-8")

    def wrapped(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        prefix, _, op = target.partition(".")
        if not prefix.startswith("DynamoDB_") or op not in JOURNALED:
            return app(environ, start_response)
        n = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(n) if n else b""
        environ["wsgi.input"] = io.BytesIO(body)
        status = []

        def capture(st, headers, exc_info=None):
            status.append(st)
            return start_response(st, headers, exc_info)

        result = app(environ, capture)
        if status and status[0].startswith("200"):
            headers = {h: environ.get("HTTP_" + h.upper().replace("-", "_"), "") for h in JOURNAL_HEADERS}
            headers["Content-Type"] = environ.get("CONTENT_TYPE", "")
            out.write(json.dumps({"h": headers, "b": base64.b64encode(body).decode()}) + "\n")
            out.flush()
        return result

    return wrapped


def replay(app, path):
    """Apply the journal's requests to the app, in order; returns the count."""
    from werkzeug.test import EnvironBuilder

    if not os.path.exists(path):
        return 0
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                sys.stderr.write("motoserver: skipping a torn journal line (the last write before a crash)\n")
                continue
            headers = {k: v for k, v in rec["h"].items() if v}
            env = EnvironBuilder(path="/", method="POST", headers=headers,
                                 data=base64.b64decode(rec["b"])).get_environ()
            for chunk in app(env, lambda *a, **k: None):
                pass
            n += 1
    return n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", default="")
    p.add_argument("--journal", default="", help="persistent mode: replay and append this journal")
    args = p.parse_args()

    try:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            create_backend_app,
        )
        from werkzeug.serving import make_server
    except ImportError as exc:  # a message, never a stack trace
        sys.stderr.write(
            "motoserver: moto with its server extras is not installed (%s).\n"
            "Run ./local/check-prereqs.sh (make dev does): it sets up moto in .dev/venv.\n" % exc
        )
        return 3

    install_item_level_rollback()
    app = DomainDispatcherApplication(create_backend_app)
    if args.journal:
        n = replay(app, args.journal)
        sys.stderr.write("motoserver: replayed %d journaled writes from %s\n" % (n, args.journal))
        app = journaled_app(app, args.journal)
    # make_server(threaded=False) is what run_simple(threaded=False) uses;
    # binding first lets port 0 resolve to a real free port we can report.
    try:
        srv = make_server(args.host, args.port, app, threaded=False, processes=1)
    except OSError as exc:
        sys.stderr.write("motoserver: cannot listen on %s:%d: %s\n" % (args.host, args.port, exc))
        return 4
    port = srv.socket.getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, args.port_file)
    sys.stdout.write("listening on http://%s:%d\n" % (args.host, port))
    sys.stdout.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
