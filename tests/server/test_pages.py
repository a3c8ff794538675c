"""Pages and their assets are served with a strict policy; nothing but what pages load is public."""

from __future__ import annotations

from tests.conftest import Api


async def test_room_page_is_served_with_strict_csp(api: Api) -> None:
    async with api.session.get(api.base + "/room") as response:
        assert response.status == 200
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert response.headers["X-Frame-Options"] == "DENY"


async def test_static_serves_page_assets_but_not_sources_or_dependencies(api: Api) -> None:
    async with api.session.get(api.base + "/static/dist/room.js") as response:
        assert response.status == 200
    for private in ("/static/node_modules/socket.io-client/package.json", "/static/package.json",
                    "/static/test/mesh.test.mjs", "/static/../server/settings.py"):
        async with api.session.get(api.base + private) as response:
            assert response.status == 404, private
