// The landing page: what the service is, and the three ways in.
import en from "../lib/i18n/index.en.js";
import zhCN from "../lib/i18n/index.zh-CN.js";
import { startPage } from "../ui/page.js";

startPage({ title: "home.title", catalogs: { en, "zh-CN": zhCN } });
