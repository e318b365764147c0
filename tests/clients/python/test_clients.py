"""redis-py against StayKV over RESP2 and RESP3, sync and asyncio: GET, SET with EX, TTL and
a full SCAN of 1,000 keys that returns each key exactly once. The same tests run against
redis-server when it is installed, which shows that the expectations are Redis's."""

import asyncio
import re

import pytest
import redis
import redis.asyncio

import servers

KEYS = 1000


@pytest.fixture(scope="module", params=["staykv", "redis"])
def server(request):
    srv = servers.start(request.param)
    if srv is None:
        pytest.skip(servers.SKIP_REASON)
    yield srv
    srv.stop()


def check_protocol(client_info, protocol):
    match = re.search(r"\bresp=(\d)\b", client_info)
    assert match and int(match.group(1)) == protocol, client_info


@pytest.mark.parametrize("protocol", [2, 3])
def test_sync_client(server, protocol):
    r = redis.Redis(host="127.0.0.1", port=server.port, protocol=protocol, decode_responses=True)
    try:
        assert r.flushall() is True
        info = r.execute_command("CLIENT", "INFO")
        check_protocol(info, protocol)

        assert r.get("missing") is None
        assert r.set("session:1", "alice", ex=100) is True
        assert r.get("session:1") == "alice"
        assert r.ttl("session:1") in (99, 100)
        assert r.execute_command("SETEX", "session:2", 5, "bob") is True
        assert r.ttl("session:2") in (4, 5)
        assert r.set("plain", "x") is True
        assert r.ttl("plain") == -1
        assert r.ttl("missing") == -2
        with pytest.raises(redis.ResponseError, match="invalid expire time in 'set' command"):
            r.execute_command("SET", "k", "v", "EX", "0")

        pipe = r.pipeline(transaction=False)
        for i in range(KEYS):
            pipe.set(f"scan:{i}", i)
        assert all(pipe.execute())
        expected = {f"scan:{i}" for i in range(KEYS)}

        seen, cursor, pages = [], 0, 0
        while True:
            cursor, keys = r.scan(cursor, count=100)
            seen.extend(keys)
            pages += 1
            if cursor == 0:
                break
        assert pages > 1, "SCAN finished in one page: COUNT ignored?"
        assert len(seen) == len(set(seen)), "SCAN returned duplicates"
        assert set(seen) == expected | {"session:1", "session:2", "plain"}

        matched = list(r.scan_iter(match="scan:*", count=100))
        assert len(matched) == len(set(matched)), "scan_iter returned duplicates"
        assert set(matched) == expected
        assert r.dbsize() == KEYS + 3
    finally:
        r.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_asyncio_client(server, protocol):
    async def scenario():
        r = redis.asyncio.Redis(host="127.0.0.1", port=server.port, protocol=protocol, decode_responses=True)
        try:
            await r.flushall()
            check_protocol(await r.execute_command("CLIENT", "INFO"), protocol)
            assert await r.set("a:1", "v", ex=60) is True
            assert await r.get("a:1") == "v"
            assert await r.ttl("a:1") in (59, 60)
            async with r.pipeline(transaction=False) as pipe:
                for i in range(KEYS):
                    pipe.set(f"a:scan:{i}", i)
                assert all(await pipe.execute())
            keys = [k async for k in r.scan_iter(match="a:scan:*", count=100)]
            assert len(keys) == len(set(keys)) == KEYS
            assert set(keys) == {f"a:scan:{i}" for i in range(KEYS)}
            # Concurrent commands on a connection pool.
            counts = await asyncio.gather(*(r.incr("a:counter") for _ in range(100)))
            assert sorted(counts) == list(range(1, 101))
        finally:
            await r.aclose()

    asyncio.run(scenario())
