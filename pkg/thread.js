// wisp-llm CPU thread: one worker of the threaded build's pool (index.js starts them in
// cross-origin-isolated pages). It instantiates the engine's module on the page's shared memory,
// says so, then runs the pool's worker loop (taking rows of each product, heads of attention)
// until the engine stops it; then it frees its stack and says it is done.
self.onmessage = async ({ data }) => {
  const { glueUrl, module, memory, epoch } = data;
  try {
    const g = await import(glueUrl);
    const wasm = g.initSync({ module, memory });
    self.postMessage({ type: 'ready' });
    g.threadWork(epoch);
    wasm.__wbindgen_thread_destroy();
    self.postMessage({ type: 'exited' });
  } catch (e) {
    self.postMessage({ type: 'error', message: `${e?.name ?? 'Error'}: ${e?.message ?? e}` });
  }
};
