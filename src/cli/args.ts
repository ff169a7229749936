// Minimal, strict option parsing for the CLI commands: `--name value`, `--name=value` and boolean `--flag`.
export interface ParsedArgs {
  readonly options: Record<string, string | true>;
  readonly positionals: string[];
}

/**
 * `booleans` take no value. When `known` is given, any other option is an error: a mistyped `--confg` must not
 * silently fall back to the default configuration.
 */
export function parseArgs(argv: readonly string[], booleans: readonly string[] = [], known?: readonly string[]): ParsedArgs {
  const options: Record<string, string | true> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      if (known && !known.includes(name) && !booleans.includes(name)) throw new Error(`unknown option --${name}`);
      if (eq !== -1) options[name] = arg.slice(eq + 1);
      else if (booleans.includes(name)) options[name] = true;
      else {
        const value = argv[i + 1];
        if (value === undefined || value.startsWith('--')) throw new Error(`option --${name} needs a value`);
        options[name] = value;
        i++;
      }
    } else {
      positionals.push(arg);
    }
  }
  return { options, positionals };
}
