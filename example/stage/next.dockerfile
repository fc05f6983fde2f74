# Example of Civic Tech Jobs' stage/next.dockerfile (build context: frontend/):
# multi-stage deps -> builder -> runner on node:22-alpine. The RUN steps stand
# in for `npm ci` and `npm run build` with busybox commands, so it builds with
# no network on the base image that scripts/stack builds locally.
FROM node:22-alpine AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN mkdir -p node_modules \
 && echo "npm ci (example: no dependencies)" > node_modules/.installed

FROM node:22-alpine AS builder
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
ENV NEXT_TELEMETRY_DISABLED=1
RUN mkdir -p .next \
 && cp server.js .next/server.js \
 && cp public/index.html .next/index.html \
 && echo ctj-example > .next/BUILD_ID

FROM node:22-alpine AS runner
WORKDIR /app
ENV NODE_ENV=production \
    NEXT_TELEMETRY_DISABLED=1 \
    PORT=3000
COPY --from=builder /app/package.json ./package.json
COPY --from=builder /app/node_modules ./node_modules
COPY --from=builder --chown=node:node /app/.next ./.next
RUN test -s .next/BUILD_ID
USER node
EXPOSE 3000
CMD ["npm", "start"]
