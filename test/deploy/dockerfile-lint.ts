// The Dockerfile lint that runs offline: dockerfile-utils' validator (the one the VS Code Docker extension uses;
// every diagnostic, whatever its severity, is a problem) plus the house rules below, the hadolint checks that matter
// for this image, read from dockerfile-ast's parse. Returns one line per problem, `line N: …`; [] when clean.
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';

const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE|API_?KEY|CREDENTIAL)/i;

export function lintDockerfile(text: string): string[] {
  const problems = validate(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
  const dockerfile = DockerfileParser.parse(text);
  const at = (instruction: Instruction, problem: string) => problems.push(`line ${instruction.getRange().start.line + 1}: ${problem}`);
  const stages = new Set<string>();
  const froms = dockerfile.getFROMs();
  for (const from of froms) {
    const image = from.getImageName() ?? '';
    // Reproducible and buildable offline: no base image is pulled (hadolint DL3006/DL3007 ask for pinned tags).
    if (image !== 'scratch' && !stages.has(image)) at(from, `FROM ${image}: only scratch or an earlier stage (no base image is pulled)`);
    const stage = from.getBuildStage();
    if (stage) stages.add(stage);
  }
  const instructions = dockerfile.getInstructions();
  const finalStart = froms.length ? froms[froms.length - 1]!.getRange().start.line : 0;
  const final = instructions.filter((i) => i.getRange().start.line >= finalStart);
  for (const instruction of instructions) {
    const keyword = instruction.getKeyword();
    // DL3020: COPY, not ADD (no URLs, no archives unpacked behind the reader's back).
    if (keyword === 'ADD') at(instruction, 'ADD: use COPY');
    // DL3025 and friends: exec (JSON) form, so no shell is needed and signals reach the process.
    if (['RUN', 'CMD', 'ENTRYPOINT'].includes(keyword) && !(instruction.getArgumentsContent() ?? '').trim().startsWith('[')) {
      at(instruction, `${keyword}: use the exec (JSON) form; the image has no shell`);
    }
    if (keyword === 'ENV' || keyword === 'ARG') {
      for (const arg of instruction.getArguments()) {
        const name = arg.getValue().split('=')[0]!;
        if (SECRET_NAME.test(name)) at(instruction, `${keyword} ${name}: secrets never go into an image`);
      }
    }
  }
  // DL3002: the image runs as a non-root user, numeric so Kubernetes' runAsNonRoot can verify it.
  const users = final.filter((i) => i.getKeyword() === 'USER');
  const user = users.at(-1)?.getArgumentsContent()?.trim();
  if (!user) problems.push('final stage: no USER (it would run as root)');
  else if (!/^[1-9]\d*(:[1-9]\d*)?$/.test(user)) at(users.at(-1)!, `USER ${user}: a numeric non-root uid[:gid]`);
  const entrypoints = final.filter((i) => i.getKeyword() === 'ENTRYPOINT');
  if (entrypoints.length !== 1) problems.push(`final stage: ${entrypoints.length} ENTRYPOINT instructions (one expected)`);
  return problems;
}
