#!/usr/bin/env python3
"""Kernel-socket clients for the interop tests (run inside the client
namespace). Each mode prints one result line and exits 0 on success,
non-zero with a reason on stderr otherwise.

  echo HOST PORT BYTES         send BYTES random bytes, read them back, compare SHA-256
  send HOST PORT BYTES         send BYTES to a discard server, then close; expect a clean FIN
  recv HOST PORT BYTES         read a `source` stream, verify length and pattern
  halfclose HOST PORT BYTES    send, shutdown(SHUT_WR), read the echo, then expect EOF
  hold HOST PORT BYTES         send BYTES to `hold` and wait: expect ECONNRESET
  connect HOST PORT            connect and close; prints 'refused' or 'connected'
  pingpong HOST PORT COUNT     COUNT one-byte round trips to an echo server, 2 ms
                               apart; prints the median round trip in microseconds
"""
import hashlib
import os
import socket
import sys
import threading
import time


def pattern_byte(i):
    # Must match src/app/source.rs pattern_byte.
    return ((i % 251) * 7 + 3) & 0xFF


PATTERN = bytes(pattern_byte(i) for i in range(251 * 256))


def connect(host, port):
    s = socket.create_connection((host, port), timeout=30)
    s.settimeout(60)
    return s


def echo(host, port, n, half_close=False):
    data = os.urandom(n)
    want = hashlib.sha256(data).hexdigest()
    s = connect(host, port)
    got = hashlib.sha256()
    received = 0
    err = []

    def writer():
        try:
            view = memoryview(data)
            while view:
                sent = s.send(view[:65536])
                view = view[sent:]
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=writer)
    t.start()
    while received < n:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got.update(chunk)
        received += len(chunk)
    t.join()
    if err:
        raise err[0]
    if half_close:
        tail = s.recv(1)
        if tail:
            raise SystemExit("data after the echo: %r" % tail)
    s.close()
    if received != n or got.hexdigest() != want:
        raise SystemExit("echo mismatch: %d of %d bytes, sha %s vs %s" % (received, n, got.hexdigest(), want))
    print("ok echo %d sha256=%s" % (n, want))


def send(host, port, n):
    s = connect(host, port)
    chunk = os.urandom(65536)
    left = n
    while left:
        left -= s.send(chunk[: min(left, len(chunk))])
    s.shutdown(socket.SHUT_WR)
    if s.recv(1) != b"":
        raise SystemExit("discard server sent data")
    s.close()
    print("ok send %d" % n)


def recv(host, port, n):
    s = connect(host, port)
    received = 0
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        off = received % len(PATTERN)
        exp = (PATTERN[off:] + PATTERN * (len(chunk) // len(PATTERN) + 1))[: len(chunk)]
        if chunk != exp:
            raise SystemExit("pattern mismatch near byte %d" % received)
        received += len(chunk)
    s.close()
    if received != n:
        raise SystemExit("got %d of %d bytes" % (received, n))
    print("ok recv %d" % n)


def hold(host, port, n):
    s = connect(host, port)
    s.sendall(os.urandom(n))
    try:
        data = s.recv(1)
    except ConnectionResetError:
        print("ok reset")
        return
    raise SystemExit("expected ECONNRESET, got %r" % data)


def probe(host, port):
    try:
        socket.create_connection((host, port), timeout=5).close()
        print("connected")
    except ConnectionRefusedError:
        print("refused")


def pingpong(host, port, count):
    s = connect(host, port)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rtts = []
    for i in range(count):
        # Idle gaps let the server's worker fall asleep between requests.
        time.sleep(0.002)
        b = bytes([i & 0xFF])
        start = time.perf_counter()
        s.sendall(b)
        got = s.recv(1)
        rtts.append(time.perf_counter() - start)
        if got != b:
            raise SystemExit("round trip %d: sent %r, got %r" % (i, b, got))
    s.shutdown(socket.SHUT_WR)
    if s.recv(1) != b"":
        raise SystemExit("data after the last answer")
    s.close()
    rtts.sort()
    print("ok pingpong median_us=%d" % int(rtts[len(rtts) // 2] * 1e6))


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    if mode == "echo":
        echo(host, port, n)
    elif mode == "halfclose":
        echo(host, port, n, half_close=True)
    elif mode == "send":
        send(host, port, n)
    elif mode == "recv":
        recv(host, port, n)
    elif mode == "hold":
        hold(host, port, n)
    elif mode == "connect":
        probe(host, port)
    elif mode == "pingpong":
        pingpong(host, port, n)
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
