"""authlib (PyPI): a Canvas token by the refresh grant and a Panopto one by the password
grant, each with HTTP Basic client authentication (authlib's default) and with form fields,
then one call to each API. Prints "ok"."""
import sys
from authlib.integrations.requests_client import OAuth2Session
base, cid, secret, refresh, pid, psecret, puser, ppass = sys.argv[1:9]
for method in ("client_secret_basic", "client_secret_post"):
    canvas = OAuth2Session(cid, secret, token_endpoint_auth_method=method)
    token = canvas.refresh_token(base + "/login/oauth2/token", refresh_token=refresh)
    assert token["access_token"], token
    me = canvas.get(base + "/api/v1/users/self")
    assert me.status_code == 200, (method, me.status_code, me.text)
    panopto = OAuth2Session(pid, psecret, token_endpoint_auth_method=method, scope="api")
    token = panopto.fetch_token(base + "/Panopto/oauth2/connect/token",
                                grant_type="password", username=puser, password=ppass)
    assert token["access_token"], token
    folders = panopto.get(base + "/Panopto/api/v1/folders/search?searchQuery=a")
    assert folders.status_code == 200, (method, folders.status_code, folders.text)
print("ok")
