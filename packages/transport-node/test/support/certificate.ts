/**
 * A self-signed certificate for tests only: CN=localhost, subjectAltName
 * DNS:localhost and IP:127.0.0.1, P-256, valid for 100 years. Generated with
 *
 *   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
 *     -keyout key.pem -out cert.pem -days 36500 -subj "/CN=localhost" \
 *     -addext "subjectAltName=DNS:localhost,IP:127.0.0.1"
 *
 * The key protects nothing: it exists so the TLS tests need no network or tools.
 */
export const cert = `-----BEGIN CERTIFICATE-----
MIIBmjCCAUGgAwIBAgIUA8RaaNUo10jkZ8jmSr+MwAVKN0AwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMTEwMTQwNloYDzIxMjYxMDI4
MTAxNDA2WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATszO0xac7d+txHylju0afF/zqNGCZ0Kvs40gk8SxV3dBjrRK4CQ98s
peeU1ObUpgXCxgEMaklLl398ztNZRynqo28wbTAdBgNVHQ4EFgQUDHmN3095aGi9
OTNhpPcb3uWCQRwwHwYDVR0jBBgwFoAUDHmN3095aGi9OTNhpPcb3uWCQRwwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDRwAwRAIfewIgDklbbYRL2yZyjdwcvTltmdU5lsfdQoHEi+n4AQIhAJBC
iEWMMwqCchYJu2pm9xpcR/+IXn8p68paqtEovBBk
-----END CERTIFICATE-----
`

export const key = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgeQoWz7KfuS1IjlJs
cAGiL3sco8umVQr4VgeEYFkVZkKhRANCAATszO0xac7d+txHylju0afF/zqNGCZ0
Kvs40gk8SxV3dBjrRK4CQ98speeU1ObUpgXCxgEMaklLl398ztNZRynq
-----END PRIVATE KEY-----
`
