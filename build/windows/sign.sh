#!/usr/bin/env bash
# Authenticode-signs Windows executables in place with osslsigncode, when a
# certificate is configured; otherwise says so and leaves them unsigned.
#
#   PORTHOLE_SIGN_PKCS12         the certificate and key (.p12/.pfx)
#   PORTHOLE_SIGN_PASSWORD_FILE  its password, if it has one (a file, so it
#                                shows in no process list)
#   PORTHOLE_SIGN_TIMESTAMP_URL  an RFC 3161 timestamp server (optional; a
#                                timestamp keeps the signature valid after
#                                the certificate expires)
#
# build/dist.sh calls it for porthole.exe and porthole-exit.exe, and makensis
# for the installer and its uninstaller (!finalize, !uninstfinalize).
set -euo pipefail

if [[ -z "${PORTHOLE_SIGN_PKCS12:-}" ]]; then
	echo "sign: PORTHOLE_SIGN_PKCS12 not set; $* left unsigned" >&2
	exit 0
fi
for f in "$@"; do
	args=(sign -pkcs12 "$PORTHOLE_SIGN_PKCS12" -h sha256
		-n Porthole -i https://github.com/porthole -in "$f" -out "$f.signed")
	if [[ -n "${PORTHOLE_SIGN_PASSWORD_FILE:-}" ]]; then
		args+=(-readpass "$PORTHOLE_SIGN_PASSWORD_FILE")
	fi
	if [[ -n "${PORTHOLE_SIGN_TIMESTAMP_URL:-}" ]]; then
		args+=(-ts "$PORTHOLE_SIGN_TIMESTAMP_URL")
	fi
	rm -f "$f.signed"
	osslsigncode "${args[@]}" >/dev/null
	mv -f "$f.signed" "$f"
	echo "sign: signed $(basename "$f")" >&2
done
