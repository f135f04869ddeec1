"""Non-GET requests share the WebSocket port (real loopback sockets)."""

import asyncio
import json
import socket

import websockets
from websockets.asyncio.server import serve

from inter1srv.frontend.http import HttpRequest, HttpResponse, Router, connection_class


async def _echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse.json(200, {"method": request.method, "body": request.json(), "q": request.query})


def _raw(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_post_goes_to_router_and_get_upgrade_still_works():
    router = Router(max_body_bytes=1000)
    router.add("POST", "/v1/echo", _echo)
    router.add("GET", "/page", lambda r: _page())

    async def handler(ws):
        await ws.send(await ws.recv())

    async def main():
        async with serve(handler, "127.0.0.1", 0, create_connection=connection_class(router),
                         process_request=_process(router)) as server:
            port = server.sockets[0].getsockname()[1]
            loop = asyncio.get_running_loop()
            body = json.dumps({"x": 1}).encode()
            # a request split into tiny pieces still parses
            ok = await loop.run_in_executor(None, _raw, port, b"POST /v1/echo?a=b HTTP/1.1\r\nHost: x\r\n"
                                            b"Content-Type: application/json\r\nContent-Length: "
                                            + str(len(body)).encode() + b"\r\n\r\n" + body)
            missing = await loop.run_in_executor(None, _raw, port, b"POST /nope HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            wrong_method = await loop.run_in_executor(None, _raw, port, b"DELETE /v1/echo HTTP/1.1\r\n\r\n")
            too_big = await loop.run_in_executor(None, _raw, port, b"POST /v1/echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n")
            chunked = await loop.run_in_executor(None, _raw, port,
                                                 b"POST /v1/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            garbage = await loop.run_in_executor(None, _raw, port, b"\x16\x03\x01 garbage\r\n\r\n")
            page = await loop.run_in_executor(None, _raw, port, b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n")
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await ws.send("hi")
                echoed = await ws.recv()
            return ok, missing, wrong_method, too_big, chunked, garbage, page, echoed

    ok, missing, wrong_method, too_big, chunked, garbage, page, echoed = asyncio.run(main())
    assert ok.startswith(b"HTTP/1.1 200 OK")
    assert json.loads(ok.split(b"\r\n\r\n", 1)[1]) == {"method": "POST", "body": {"x": 1}, "q": {"a": ["b"]}}
    assert missing.startswith(b"HTTP/1.1 404")
    assert wrong_method.startswith(b"HTTP/1.1 405")
    assert too_big.startswith(b"HTTP/1.1 413")
    assert chunked.startswith(b"HTTP/1.1 411")
    assert garbage.startswith(b"HTTP/1.1 400")
    assert page.startswith(b"HTTP/1.1 200") and page.endswith(b"<p>hello</p>")
    assert echoed == "hi"


async def _page() -> HttpResponse:
    return HttpResponse(200, b"<p>hello</p>", "text/html; charset=utf-8")


def _process(router: Router):
    async def process_request(connection, request):
        if request.path == "/page":
            return (await router.dispatch(HttpRequest("GET", request.path, {}))).to_websockets()
        return None
    return process_request
