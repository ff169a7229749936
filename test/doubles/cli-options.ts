// `--name value` options of the doubles' by-hand entry points.
export function optionReader(argv: readonly string[]): (name: string) => string | undefined {
  return (name) => {
    const i = argv.indexOf(`--${name}`);
    return i === -1 ? undefined : argv[i + 1];
  };
}
