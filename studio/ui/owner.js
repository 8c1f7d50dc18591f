// Put into the page's <head> by studio.ui.app.launch, before the page makes any request: a random id for this
// browser in the `toonlab_owner` cookie (studio.ui.tabs.owner_of), so that a page reloaded or opened again while a
// video, LoRA or distill job runs shows that job's progress. 128 random bits: as secret as a session cookie.
(() => {
  if (/(?:^|;\s*)toonlab_owner=[0-9a-f]{32}(?:;|$)/.test(document.cookie)) return;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const id = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  document.cookie = `toonlab_owner=${id}; path=/; max-age=31536000; SameSite=Strict`;
})();
