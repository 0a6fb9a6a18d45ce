// Drives the playground in Debian's headless Chromium with playwright-core:
//   node playground.mjs SERVER_URL SCREENSHOT_DIR
// Finds everything by its accessible name. Prints one line per step; exits
// non-zero (with the reason) on the first step that fails or on a console error.
import { chromium } from "playwright-core";

const [url, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const problems = [];
page.on("console", (message) => {
  if (message.type() === "error") problems.push(`console error: ${message.text()}`);
});
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
page.setDefaultTimeout(30_000);

async function step(name, body) {
  try {
    await body();
    await page.screenshot({ path: `${shots}/${name}.png` });
    console.log(`ok ${name}`);
  } catch (error) {
    await page.screenshot({ path: `${shots}/${name}-failed.png` }).catch(() => {});
    console.log(`FAILED ${name}: ${error.message.split("\n")[0]}`);
    await browser.close();
    process.exit(1);
  }
}

/** Replaces the editor's text (the editor is named "Code"). */
async function typeCode(code) {
  const editor = page.getByRole("textbox", { name: "Code" });
  await editor.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  // insertText: no auto-indent, so the code is exactly this.
  await page.keyboard.insertText(code);
}

const output = () => page.getByRole("region", { name: "Output" });
const terminalText = () => page.locator(".xterm-rows").innerText();

async function waitForTerminal(wanted) {
  const deadline = Date.now() + 30_000;
  while (!(await terminalText()).includes(wanted)) {
    if (Date.now() > deadline) throw new Error(`the terminal never showed ${JSON.stringify(wanted)}: ${await terminalText()}`);
    await page.waitForTimeout(50);
  }
}

await step("01-loaded", async () => {
  const started = Date.now();
  await page.goto(url);
  await page.getByRole("combobox", { name: "Language" }).locator("option").first().waitFor({ state: "attached" });
  const ready = Date.now() - started;
  const cold = await page.evaluate(() => performance.getEntriesByType("navigation")[0].loadEventEnd);
  // Again in a fresh context (no cache), now that the browser itself is up.
  const fresh = await browser.newPage();
  await fresh.goto(url, { waitUntil: "load" });
  const warm = await fresh.evaluate(() => performance.getEntriesByType("navigation")[0].loadEventEnd);
  await fresh.close();
  console.log(`page load ${Math.round(warm)} ms (${Math.round(cold)} ms in a browser just started; languages listed ${ready} ms after navigation began)`);
  for (const [role, name] of [["combobox", "Version"], ["button", "Run"], ["region", "Terminal"], ["region", "Output"], ["tab", "Tests"], ["textbox", "Code"]]) {
    await page.getByRole(role, { name, exact: true }).waitFor();
  }
});

await step("02-python-asks-a-name", async () => {
  await page.getByRole("combobox", { name: "Language" }).selectOption("python");
  await typeCode('name = input("What is your name? ")\nprint(f"Hello, {name}!")\n');
  await page.getByRole("button", { name: "Run" }).click();
  await waitForTerminal("What is your name?");
});

await step("03-python-greets", async () => {
  await page.getByRole("region", { name: "Terminal" }).click();
  await page.keyboard.type("Ada");
  await page.keyboard.press("Enter");
  await waitForTerminal("Hello, Ada!");
  await output().getByText(/^OK ·/).waitFor();
});

await step("04-c-compile-error", async () => {
  await page.getByRole("combobox", { name: "Language" }).selectOption("c");
  await typeCode('#include <stdio.h>\n\nint main(void) {\n    printf("hi\\n")\n    return 0;\n}\n');
  // Ctrl+Enter runs, from the editor.
  await page.getByRole("textbox", { name: "Code" }).press("Control+Enter");
  await output().getByText("Compile error").waitFor();
  // gcc reports the missing ';' at the end of line 4 or at line 5.
  const jump = output().getByRole("button", { name: /^Line [45]$/ }).first();
  await jump.waitFor();
  const marked = page.locator(".cm-lintRange-error");
  await marked.first().waitFor();
});

await step("05-judge-two-tests", async () => {
  await page.getByRole("combobox", { name: "Language" }).selectOption("python");
  await typeCode("a, b = map(int, input().split())\nprint(a + b)\n");
  await page.getByRole("tab", { name: "Tests" }).click();
  await page.getByLabel("Input 1").fill("2 3");
  await page.getByLabel("Expected output 1").fill("5");
  await page.getByLabel("Input 2").fill("2 2");
  await page.getByLabel("Expected output 2").fill("5");
  await page.getByRole("button", { name: "Judge" }).click();
  await page.getByText("Test 1: Accepted").waitFor();
  await page.getByText("Test 2: Wrong answer").waitFor();
  await output().getByText("1/2 tests passed").waitFor();
});

await browser.close();
if (problems.length > 0) {
  console.log(`FAILED console: ${problems.join(" | ")}`);
  process.exit(1);
}
console.log("ok no-console-errors");
