// Placeholder for the Next.js server of Civic Tech Jobs. The example image
// has no node binary (its base is a busybox stand-in for node:22-alpine), so
// this file is only copied through the multi-stage build.
const http = require("http");
const port = process.env.PORT || 3000;
http
  .createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ctj-example frontend\n");
  })
  .listen(port);
