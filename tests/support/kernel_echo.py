# An asyncio echo (ADDR PORT) and discard (ADDR PORT+1) server on Linux
# kernel sockets, for the fast-path client tests; prints `ready`.
import asyncio, sys
async def echo(r, w):
    try:
        while True:
            d = await r.read(65536)
            if not d:
                break
            w.write(d)
            await w.drain()
    except ConnectionError:
        pass
    finally:
        w.close()
async def discard(r, w):
    try:
        while await r.read(1 << 20):
            pass
    except ConnectionError:
        pass
    finally:
        w.close()
async def main():
    s = await asyncio.start_server(echo, sys.argv[1], int(sys.argv[2]), backlog=4096)
    d = await asyncio.start_server(discard, sys.argv[1], int(sys.argv[2]) + 1)
    print("ready", flush=True)
    await s.serve_forever()
asyncio.run(main())
