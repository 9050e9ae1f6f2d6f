#!/usr/bin/env python3
"""What one fdatasync costs on this disk as a function of the 4 KiB pages written before it, and
of where they lie: one run of neighbours, scattered over 4 MiB, or over 16 MiB (a redb durable
commit writes its B-tree pages where they are, 35-60 a sync under imaptest's load).

    infra/bench/fdatasync_pages.py [DIR]     # a 64 MiB scratch file in DIR (default target/), removed after
"""
import os
import random
import sys
import time

directory = sys.argv[1] if len(sys.argv) > 1 else "target"
path = os.path.join(directory, "fdatasync-pages.scratch")
size = 64 << 20
page = os.urandom(4096)
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
try:
    # Written and synced whole first, so no sync below changes the file's size or allocation.
    for offset in range(0, size, 1 << 20):
        os.pwrite(fd, os.urandom(1 << 20), offset)
    os.fsync(fd)

    def placed(spread_pages):
        if spread_pages is None:
            return lambda n: [(1000 + i) * 4096 for i in range(n)]
        return lambda n: [random.randrange(spread_pages) * 4096 for _ in range(n)]

    for label, spread in (("neighbours", None), ("over 4 MiB", 1024), ("over 16 MiB", 4096)):
        for pages in (1, 16, 64, 135):
            pick = placed(spread)
            took = []
            for _ in range(150):
                for offset in pick(pages):
                    os.pwrite(fd, page, offset)
                started = time.perf_counter()
                os.fdatasync(fd)
                took.append((time.perf_counter() - started) * 1000)
            took.sort()
            p50, p90 = took[len(took) // 2], took[int(len(took) * 0.9)]
            print(f"{label:12} {pages:4} pages: p50 {p50:.2f} ms, p90 {p90:.2f} ms")
finally:
    os.close(fd)
    os.unlink(path)
