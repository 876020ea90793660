// xterm.js's DOM renderer styles itself with <style> elements (theme, cell size) and, for 24-bit
// colours, setAttribute('style'). Our CSP has no style-src 'unsafe-inline', which refuses both. Rather
// than weaken the CSP for the whole console, both are routed through the CSSOM, which the CSP does not
// govern: a <style> becomes an inert element whose text feeds a constructed stylesheet, and a span's
// style attribute becomes style.cssText. The console itself never creates <style> or writes style
// attributes, so only xterm's own, script-made styles take this path; markup still cannot inject any.
let installed = false;

/** A stand-in for a <style> element: xterm sets textContent and calls remove(), nothing else. */
function sheetElement(create: typeof document.createElement): HTMLElement {
  const sheet = new CSSStyleSheet();
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  const node = create.call(document, 'remux-style');
  node.hidden = true;
  let text = '';
  Object.defineProperty(node, 'textContent', {
    get: () => text,
    set: (value: string | null) => {
      text = value ?? '';
      sheet.replaceSync(text);
    },
  });
  const remove = node.remove.bind(node);
  node.remove = () => {
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== sheet);
    remove();
  };
  return node;
}

export function routeInlineStyles(): void {
  if (installed) return;
  installed = true;
  const create = document.createElement;
  document.createElement = function (this: Document, tag: string, options?: ElementCreationOptions) {
    return tag.toLowerCase() === 'style' ? sheetElement(create) : create.call(this, tag, options);
  } as typeof document.createElement;
  const setAttribute = HTMLSpanElement.prototype.setAttribute;
  HTMLSpanElement.prototype.setAttribute = function (this: HTMLSpanElement, name: string, value: string) {
    if (name.toLowerCase() === 'style') this.style.cssText = value;
    else setAttribute.call(this, name, value);
  };
}
