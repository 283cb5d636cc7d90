// Setup file of the tiers that need root: without it every test file of the tier fails with this message
// instead of being skipped, so a run that is not root can never look green. CI runs as root.
if (typeof process.getuid === 'function' && process.getuid() !== 0) {
  throw new Error(
    `this test tier needs root (uid 0), and runs as uid ${process.getuid()}: run \`sudo npm test\` or \`sudo bash .ci/run\``,
  );
}
