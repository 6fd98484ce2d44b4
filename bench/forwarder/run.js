"use strict";
// aws-lambda-ses-forwarder as shipped on npm, driven warm by bench/gateway.py against moto.
//
//   node bench/forwarder/run.js   (bench/gateway.py starts it; not meant to be run by hand)
//
// Settings come from the environment: BENCH_ENDPOINT (moto), BENCH_REGION, BENCH_BUCKET,
// BENCH_PREFIX, BENCH_FROM (a verified identity), BENCH_RECIPIENT and BENCH_FORWARD_TO.
// Each line on standard input is one round: {"ids": ["...", ...]}, the message ids whose raw
// messages are stored at s3://BENCH_BUCKET/BENCH_PREFIX<id>. The messages are run one after
// another through the package's own handler, with its config and S3 and SESv2 clients given as
// overrides (its README's way). The answer is one JSON line on file descriptor BENCH_ANSWER_FD: wall ms per
// message, this process's CPU time for the round (process.cpuUsage()), the AWS calls made by
// API, and each message's calls as [api, start ms, end ms] for counting round trips.
// The forwarder's own logging (console.log) goes to standard output, as in Lambda.

const fs = require("fs");
const readline = require("readline");
const { S3Client } = require("@aws-sdk/client-s3");
const { SESv2Client } = require("@aws-sdk/client-sesv2");
const forwarder = require("aws-lambda-ses-forwarder");

const env = process.env;
const answers = Number(env.BENCH_ANSWER_FD);
const credentials = { accessKeyId: "local", secretAccessKey: "local" };
const s3 = new S3Client({ endpoint: env.BENCH_ENDPOINT, region: env.BENCH_REGION, credentials, forcePathStyle: true });
const ses = new SESv2Client({ endpoint: env.BENCH_ENDPOINT, region: env.BENCH_REGION, credentials });
const config = {
  fromEmail: env.BENCH_FROM,
  subjectPrefix: "",
  emailBucket: env.BENCH_BUCKET,
  emailKeyPrefix: env.BENCH_PREFIX,
  allowPlusSign: true,
  forwardMapping: { [env.BENCH_RECIPIENT]: [env.BENCH_FORWARD_TO] },
};

let current = null; // the calls of the message running now: [api, start ms, end ms]
const SERVICE = { S3Client: "S3", SESv2Client: "SESv2" };
for (const client of [s3, ses]) {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const start = performance.now();
      try {
        return await next(args);
      } finally {
        const api = `${SERVICE[context.clientName] || context.clientName}.${context.commandName.replace(/Command$/, "")}`;
        if (current) current.push([api, start, performance.now()]);
      }
    },
    { step: "initialize", name: "benchCallLog" },
  );
}

function sesEvent(id) {
  return {
    Records: [
      {
        eventSource: "aws:ses",
        eventVersion: "1.0",
        ses: {
          mail: { messageId: id, source: "news@vendor.example", destination: [env.BENCH_RECIPIENT] },
          receipt: { recipients: [env.BENCH_RECIPIENT] },
        },
      },
    ],
  };
}

function runOne(id) {
  return new Promise((resolve) => {
    forwarder.handler(sesEvent(id), {}, (error) => resolve(error || null), { config, s3, ses });
  });
}

async function runRound(ids) {
  const ms = [];
  const calls = [];
  let errors = 0;
  const cpuStart = process.cpuUsage();
  for (const id of ids) {
    current = [];
    const start = performance.now();
    const error = await runOne(id);
    ms.push(performance.now() - start);
    calls.push(current);
    current = null;
    if (error) errors += 1;
  }
  const cpu = process.cpuUsage(cpuStart);
  return { ms, cpu_ms: (cpu.user + cpu.system) / 1000, calls, errors };
}

const lines = readline.createInterface({ input: process.stdin });
(async () => {
  for await (const line of lines) {
    if (!line.trim()) continue;
    const result = await runRound(JSON.parse(line).ids);
    fs.writeSync(answers, JSON.stringify(result) + "\n");
  }
})();
