#!/usr/bin/env node
// The nems-gateway command line: start, check-config, jwt, core, mailbox, demo, replay.
// Each command's modules are imported only when it runs: `--help`, `jwt` and `check-config` start quickly.

const USAGE = `usage: nems-gateway <command> [options]

commands:
  start [--config F]            start the gateway (default command)
  check-config [--config F]     validate the configuration, certificates and registry, then exit (0 = valid)
  jwt --asid A --ods O --scope S [--patient N] [--user U] [--lifetime s] [--aud URL]
                                print an unsigned Spine JWT for local testing
  core [--port N] [--host H] [--data-dir D]
                                run the embedded reference NEMS core as a standalone HTTP server
  mailbox <id> [--follow] [--data-dir D]
                                list (or follow) the messages delivered to a MESH-style mailbox
  mailbox <id> --mesh --password-file F [--ack] [--save DIR] [--config F]
                                list (download, acknowledge) the messages in a MESH API inbox (core.mesh)
  demo [--config F] [--certs DIR] [--data-dir D] [--keep-data]
                                run the end-to-end demo scenario against a freshly started gateway
  replay FILE [--config F]      run recorded requests (JSON lines) through the gateway's rules offline: which
                                would be forwarded, reported or refused, and by which rule (exit 1 if any refused)
  help [command]                this text, or one command's options (same as: <command> --help)
  --version                     print the version, source revision and Node.js version

Unknown options and bad values are refused (exit 2).
`;

const COMMANDS = ['start', 'check-config', 'jwt', 'core', 'mailbox', 'demo', 'replay'];

async function main(argv: string[]): Promise<number> {
  const [command = 'start', ...rest] = argv;
  switch (command) {
    case 'start':
      return (await import('./cli/start.js')).startCommand(rest);
    case 'check-config':
      return (await import('./cli/start.js')).checkConfigCommand(rest);
    case 'jwt':
      return (await import('./cli/jwt.js')).runJwtCommand(rest);
    case 'core':
      return (await import('./nems-core/http-server.js')).runCoreCommand(rest);
    case 'mailbox':
      return (await import('./nems-core/http-server.js')).runMailboxCommand(rest);
    case 'demo':
      return (await import('./cli/demo.js')).runDemoCommand(rest);
    case 'replay':
      return (await import('./cli/replay.js')).runReplayCommand(rest);
    case 'help':
      if (rest[0] !== undefined && rest[0] !== 'help' && COMMANDS.includes(rest[0])) return main([rest[0], '--help']);
      if (rest.length > 0) {
        process.stderr.write(`unknown command '${rest[0]}'\n${USAGE}`);
        return 2;
      }
      process.stdout.write(USAGE);
      return 0;
    case '--version':
      process.stdout.write(`${(await import('./observability/build-info.js')).versionLine()}\n`);
      return 0;
    case '-h':
    case '--help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`unknown command '${command}'\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // start and core keep running until a signal; every other command exits with its code.
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`nems-gateway: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
