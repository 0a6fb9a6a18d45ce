// Syntax highlighting for the catalog's languages: CodeMirror's stream modes
// (small), keyed by the catalog's language ids; unknown ids get plain text.
import { StreamLanguage } from "@codemirror/language";
import { c, cpp, java, csharp, scala, kotlin, dart, objectiveC } from "@codemirror/legacy-modes/mode/clike";
import { python } from "@codemirror/legacy-modes/mode/python";
import { javascript, typescript } from "@codemirror/legacy-modes/mode/javascript";
import { go } from "@codemirror/legacy-modes/mode/go";
import { rust } from "@codemirror/legacy-modes/mode/rust";
import { shell } from "@codemirror/legacy-modes/mode/shell";
import { ruby } from "@codemirror/legacy-modes/mode/ruby";
import { perl } from "@codemirror/legacy-modes/mode/perl";
import { lua } from "@codemirror/legacy-modes/mode/lua";
import { haskell } from "@codemirror/legacy-modes/mode/haskell";
import { oCaml, fSharp } from "@codemirror/legacy-modes/mode/mllike";
import { erlang } from "@codemirror/legacy-modes/mode/erlang";
import { pascal } from "@codemirror/legacy-modes/mode/pascal";
import { fortran } from "@codemirror/legacy-modes/mode/fortran";
import { gas } from "@codemirror/legacy-modes/mode/gas";
import { commonLisp } from "@codemirror/legacy-modes/mode/commonlisp";
import { scheme } from "@codemirror/legacy-modes/mode/scheme";
import { clojure } from "@codemirror/legacy-modes/mode/clojure";
import { r } from "@codemirror/legacy-modes/mode/r";
import { octave } from "@codemirror/legacy-modes/mode/octave";
import { julia } from "@codemirror/legacy-modes/mode/julia";
import { crystal } from "@codemirror/legacy-modes/mode/crystal";
import { d } from "@codemirror/legacy-modes/mode/d";
import { swift } from "@codemirror/legacy-modes/mode/swift";
import { groovy } from "@codemirror/legacy-modes/mode/groovy";
import { tcl } from "@codemirror/legacy-modes/mode/tcl";
import { sql } from "@codemirror/legacy-modes/mode/sql";

const parsers = {
  c, cpp, java, csharp, scala, kotlin, dart, objc: objectiveC,
  python, pypy: python, javascript, typescript, go, rust,
  bash: shell, sh: shell, awk: shell, ruby, perl, lua, haskell,
  ocaml: oCaml, fsharp: fSharp, erlang, elixir: ruby, pascal, fortran,
  nasm: gas, commonlisp: commonLisp, racket: scheme, scheme, clojure,
  r, octave, julia, crystal, d, swift, groovy, tcl, sqlite: sql({}),
  php: c, prolog: erlang, nim: python, zig: rust, ada: pascal, cobol: pascal,
};

const cache = new Map();

/** The CodeMirror language of a catalog id, or null for plain text. */
export function languageOf(id) {
  const parser = parsers[id] || parsers[id.replace(/[0-9.]+$/, "")];
  if (!parser) return null;
  if (!cache.has(id)) cache.set(id, StreamLanguage.define(parser));
  return cache.get(id);
}
