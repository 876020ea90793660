// xterm.js (DOM renderer) writes the CSS it computes — cell sizes, theme colours — into <style>
// elements, which our CSP (style-src 'self', no 'unsafe-inline') refuses to apply. Here those elements
// are stand-ins that carry the same CSS into constructed style sheets (document.adoptedStyleSheets):
// CSSOM, not markup, which the CSP allows, so it stays strict. xterm's own stylesheet comes from our
// origin. Call before creating a Terminal.
let installed = false;

export function xtermStyles(): void {
  if (installed) return;
  installed = true;
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = '/xterm.css';
  document.head.append(link);

  const create = document.createElement.bind(document);
  const patched = (tag: string, options?: ElementCreationOptions): HTMLElement => {
    if (tag.toLowerCase() !== 'style') return create(tag, options);
    // A <template> is never rendered; xterm only sets textContent and calls remove() on its style elements.
    const standIn = create('template');
    const sheet = new CSSStyleSheet();
    let css = '';
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    Object.defineProperty(standIn, 'textContent', {
      get: () => css,
      set: (text: string | null) => {
        css = text ?? '';
        sheet.replaceSync(css);
      },
    });
    standIn.remove = () => {
      document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== sheet);
      Element.prototype.remove.call(standIn);
    };
    return standIn;
  };
  (document as { createElement: typeof patched }).createElement = patched;
}
