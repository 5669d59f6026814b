// The JavaScript no-op task (ABI v2, a componentize-js component): returns `null`.
// `bulkhead bench` times its attempts to show what a large (about 12 MB) interpreter component
// costs per attempt against a native `node -e 0`.
export function run(_task) {
  return 'null';
}
