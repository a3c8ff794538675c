// The landing page: what the service is, and the three ways in.
import { startPage } from "../ui/page.js";

startPage({ title: "home.title" });
