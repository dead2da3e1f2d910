// The code editor of mod_pyexec's web page: CodeMirror 6 with Python.
//
// Bundled by web/build.mjs into htdocs/assets/editor.js, which defines
// window.PyExecEditor. The page (htdocs/app.js) works without it, on a
// plain textarea, so an install from a checkout without Node.js still
// has a working page; the bundle only makes it a real editor.

import {EditorState, Prec} from "@codemirror/state";
import {
    EditorView, keymap, lineNumbers, highlightActiveLine,
    highlightActiveLineGutter, highlightSpecialChars, drawSelection,
} from "@codemirror/view";
import {
    defaultKeymap, history, historyKeymap, indentWithTab,
} from "@codemirror/commands";
import {
    bracketMatching, indentOnInput, indentUnit, syntaxHighlighting,
    HighlightStyle,
} from "@codemirror/language";
import {
    autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap,
} from "@codemirror/autocomplete";
import {
    highlightSelectionMatches, search, searchKeymap,
} from "@codemirror/search";
import {python} from "@codemirror/lang-python";
import {tags as t} from "@lezer/highlight";

// Colours come from CSS variables (htdocs/app.css), so the editor follows
// the page between light and dark without being reconfigured.
const highlight = HighlightStyle.define([
    {tag: [t.keyword, t.controlKeyword, t.definitionKeyword,
           t.moduleKeyword, t.operatorKeyword], color: "var(--tok-keyword)"},
    {tag: [t.string, t.special(t.string)], color: "var(--tok-string)"},
    {tag: [t.number, t.bool, t.null], color: "var(--tok-number)"},
    {tag: [t.comment, t.lineComment], color: "var(--tok-comment)",
     fontStyle: "italic"},
    {tag: [t.function(t.definition(t.variableName)),
           t.definition(t.className)], color: "var(--tok-def)"},
    {tag: [t.function(t.variableName), t.function(t.propertyName)],
     color: "var(--tok-call)"},
    {tag: [t.className, t.self, t.standard(t.variableName)],
     color: "var(--tok-builtin)"},
    {tag: t.invalid, color: "var(--err)"},
]);

const theme = EditorView.theme({
    "&": {
        backgroundColor: "var(--box)",
        color: "var(--fg)",
        border: "1px solid var(--line)",
        borderRadius: "6px",
        fontSize: "14px",
    },
    "&.cm-focused": {
        outline: "2px solid var(--accent)",
        outlineOffset: "1px",
    },
    ".cm-scroller": {
        fontFamily: "var(--mono)",
        lineHeight: "1.45",
        minHeight: "10rem",
        maxHeight: "60vh",
    },
    ".cm-content": {caretColor: "var(--fg)"},
    ".cm-cursor, .cm-dropCursor": {borderLeftColor: "var(--fg)"},
    ".cm-gutters": {
        backgroundColor: "var(--box)",
        color: "var(--muted)",
        borderRight: "1px solid var(--line)",
    },
    ".cm-activeLine": {backgroundColor: "var(--active-line)"},
    ".cm-activeLineGutter": {backgroundColor: "var(--active-line)"},
    "&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground":
        {backgroundColor: "var(--selection)"},
    ".cm-matchingBracket": {
        backgroundColor: "var(--bracket)",
        outline: "1px solid var(--muted)",
    },
    ".cm-nonmatchingBracket": {color: "var(--err)"},
    ".cm-tooltip": {
        backgroundColor: "var(--bg)",
        color: "var(--fg)",
        border: "1px solid var(--line)",
    },
    ".cm-panels": {backgroundColor: "var(--box)", color: "var(--fg)"},
});

/**
 * Replaces `textarea` by an editor holding its text.
 *
 * options.onRun: called on Ctrl+Enter / Cmd+Enter.
 * options.labelId: id of the element that labels the code.
 * Returns {getCode, setCode, focus, view}.
 */
export function create(textarea, options = {}) {
    const runKeys = keymap.of([{
        key: "Mod-Enter",
        run: () => { if (options.onRun) options.onRun(); return true; },
        preventDefault: true,
    }]);
    // CodeMirror leaves "Esc then Tab" open for two seconds only; a user
    // finding the key or reading the hint needs longer. Any other key
    // still ends it, and it ends when focus comes back.
    let escaped = false;
    const escapeLeaves = EditorView.domEventHandlers({
        keyup(event, view) {
            if (event.key === "Escape") {
                escaped = true;
                view.setTabFocusMode(10 * 60 * 1000);
            }
            return false;
        },
        focus(event, view) {
            if (escaped) {
                escaped = false;
                view.setTabFocusMode(false);
            }
            return false;
        },
    });
    const contentAttrs = {"aria-multiline": "true"};
    if (options.labelId) contentAttrs["aria-labelledby"] = options.labelId;
    if (options.describedBy) contentAttrs["aria-describedby"] = options.describedBy;

    const state = EditorState.create({
        doc: textarea.value,
        extensions: [
            // Ctrl+Enter runs; it must win over insertBlankLine
            Prec.highest(runKeys),
            lineNumbers(),
            highlightActiveLineGutter(),
            highlightSpecialChars(),
            history(),
            drawSelection(),
            EditorState.allowMultipleSelections.of(true),
            indentOnInput(),
            indentUnit.of("    "),
            EditorState.tabSize.of(4),
            syntaxHighlighting(highlight),
            bracketMatching(),
            closeBrackets(),
            // completion on request (Ctrl+Space) only: a popup that
            // swallows Enter while typing is the commonest editor surprise
            autocompletion({activateOnTyping: false}),
            highlightActiveLine(),
            highlightSelectionMatches(),
            search({top: true}),
            keymap.of([
                ...closeBracketsKeymap,
                ...defaultKeymap,
                ...searchKeymap,
                ...historyKeymap,
                ...completionKeymap,
                // Tab indents; Escape then Tab leaves the editor
                indentWithTab,
            ]),
            escapeLeaves,
            python(),
            theme,
            EditorView.contentAttributes.of(contentAttrs),
            EditorView.lineWrapping,
        ],
    });
    const view = new EditorView({state});
    textarea.insertAdjacentElement("afterend", view.dom);
    textarea.hidden = true;
    view.dom.classList.add("editor");

    return {
        view,
        getCode: () => view.state.doc.toString(),
        setCode(text) {
            view.dispatch({
                changes: {from: 0, to: view.state.doc.length, insert: text},
                selection: {anchor: text.length},
                scrollIntoView: true,
            });
        },
        focus: () => view.focus(),
    };
}
