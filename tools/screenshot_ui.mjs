// Drive the running studio in headless Chromium: upload a photo, pick a character, Stylize, screenshot.
//   npm install playwright-core   (once, anywhere; uses Debian's /usr/bin/chromium, no browser download)
//   NODE_PATH=<dir>/node_modules node tools/screenshot_ui.mjs http://127.0.0.1:7860/ photo.jpg out.png [character]
import { chromium } from "playwright-core";

const [url, photo, out, character] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
await page.goto(url, { waitUntil: "networkidle" });
await page.setInputFiles("input[type=file]", photo);
if (character) {
  await page.getByLabel("Character").click();
  await page.getByRole("option", { name: character }).click();
}
await page.getByRole("button", { name: "Stylize", exact: true }).click();
await page.getByText(/face\(s\)/).waitFor({ timeout: 120000 });
await page.waitForTimeout(1500);
await page.screenshot({ path: out, fullPage: true });
await browser.close();
console.log(out);
