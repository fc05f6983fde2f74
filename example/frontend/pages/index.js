import { useEffect, useState } from "react";

// The page fetches the backend's healthcheck in the browser: on stage the
// load balancer routes /api/* to django, and so does `ctjdeploy stage local`.
// (The example image serves public/index.html, which does the same.)
export default function Home() {
  const [health, setHealth] = useState("loading...");
  useEffect(() => {
    fetch("/api/healthcheck", { cache: "no-store" })
      .then((r) => r.text().then((t) => `${r.status} ${t}`))
      .then((t) => setHealth(`healthcheck: ${t}`))
      .catch((e) => setHealth(`healthcheck failed: ${e}`));
  }, []);
  return (
    <main>
      <h1>Civic Tech Jobs (ctjdeploy example)</h1>
      <pre id="health">{health}</pre>
    </main>
  );
}
