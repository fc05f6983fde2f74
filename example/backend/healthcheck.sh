#!/bin/sh
# Stand-in for Civic Tech Jobs' GET /api/healthcheck (the example image has
# no Python): run by `nc -ll -e` for each connection, it reads one request
# and answers 200 with JSON holding the uptime and revision, 404 elsewhere.
read -r method path _
while read -r line; do
	[ -z "$(printf %s "$line" | tr -d '\r')" ] && break
done
now=$(date +%s)
# Django's database: the task's postgres, on localhost (awsvpc). An
# SSLRequest packet gets one byte back (N or S) from a postgres server.
db=unreachable
if [ -n "${SQL_HOST:-}" ]; then
	answer=$(printf '\0\0\0\10\4\322\26\57' | timeout 1 nc "$SQL_HOST" "${SQL_PORT:-5432}" 2>/dev/null | head -c1)
	case "$answer" in N | S) db="postgres on ${SQL_HOST}:${SQL_PORT:-5432}" ;; esac
fi
started=$(cat /tmp/started 2>/dev/null || echo "$now")
case "$path" in
/api/healthcheck | /api/healthcheck/)
	status="200 OK"
	body=$(printf '{"status":"ok","uptime":%d,"revision":"%s","method":"%s","database":"%s"}' $((now - started)) "${GIT_REVISION:-unknown}" "$method" "$db")
	;;
*)
	status="404 Not Found"
	body='{"error":"not found"}'
	;;
esac
printf 'HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "$status" "${#body}" "$body"
