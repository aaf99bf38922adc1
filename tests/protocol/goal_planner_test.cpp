#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "troupe/protocol/goal.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/planning.hpp"

using namespace troupe;

namespace {

using strings = std::vector<std::string>;

goal_options command_agents() {
  goal_options o;
  o.executor.kind = "command";
  o.executor.run = "true";
  return o;
}

// A plan's shape in one line, phase by phase: `id(persona agent/tier)`,
// phases joined by " > ", gates as `|gate|` where they stand.
std::string shape(const plan& p) {
  auto a = assess(p);
  std::string out;
  for (size_t i = 0; i < a.phases.size(); ++i) {
    if (i > 0)
      out += " > ";
    for (size_t k = 0; k < a.phases[i].size(); ++k) {
      auto& id = a.phases[i][k];
      auto w = std::find_if(p.workstreams.begin(), p.workstreams.end(),
                            [&](auto& x) { return x.id == id; });
      out += (k > 0 ? " " : "") + id + "(" + w->persona + " "
             + to_string(w->agent) + "/" + to_string(w->model) + ")";
    }
  }
  return out;
}

struct planned {
  goal_plan gp;
  plan_assessment a;
  std::string yaml;
};

// Plans `goal` and checks what every planned plan must hold: it is a valid
// plan file whose text gives the same plan back, and no phase is wider
// than allowed.
planned plan_of(const std::string& goal, goal_options opts = command_agents()) {
  planned out{plan_from_goal(goal, opts), {}, {}};
  out.yaml = plan_yaml(out.gp.p);
  diagnostics d;
  auto back = load_plan_text(out.yaml, "yaml", {}, d);
  std::string all;
  for (auto& x : d.items())
    all += to_string(x) + "\n";
  INFO(goal << "\n" << out.yaml << all);
  REQUIRE(d.ok());
  CHECK(json_text(back) == json_text(out.gp.p));
  out.a = assess(back);
  for (auto& phase : out.a.phases)
    CHECK(phase.size() <= static_cast<size_t>(opts.max_phase_width));
  return out;
}

} // namespace

// The planner on goals of every form and strategy: the plan's phases with
// each workstream's persona, agent kind and tier, and its gate.
TEST_CASE("the heuristic planner shapes goals by form and strategy",
          "[protocol][goal]") {
  struct expected {
    const char* goal;
    complexity level;
    const char* strategy;
    std::string shape;
    std::string gates;
  };
  const std::vector<expected> table{
    {"Fix the typo in the README", complexity::simple, "bug investigation",
     "typo-readme(docs general/balanced)", ""},
    {"Fix the crash when the config file is empty", complexity::simple,
     "bug investigation", "crash-config-file(debugger general/balanced)", ""},
    {"Find all API routes", complexity::simple, "feature",
     "api-routes(backend explore/fast)", ""},
    {"Add a REST endpoint for orders and a React page that lists them "
     "and a database migration for the orders table",
     complexity::complex, "feature",
     "design(backend plan/deep) > "
     "rest-endpoint-orders(backend general/balanced) react-page-lists(frontend "
     "general/balanced) database-migration-orders(data_engineer "
     "general/balanced) > "
     "tests(qa general/balanced) > "
     "docs(docs general/balanced)",
     "implementation after rest-endpoint-orders react-page-lists "
     "database-migration-orders"},
    {"Implement user authentication with JWT, password hashing, and tests",
     complexity::moderate, "feature",
     "user-authentication-jwt(backend general/balanced) "
     "password-hashing(backend general/balanced) > "
     "tests(qa general/balanced) > "
     "docs(docs general/balanced)",
     "implementation after user-authentication-jwt password-hashing"},
    {"Design the cache layer then implement it then benchmark it",
     complexity::moderate, "feature",
     "cache-layer(backend plan/deep) > "
     "implement-cache-layer(backend general/balanced) > "
     "benchmark-cache-layer(performance general/balanced) > "
     "tests(qa general/balanced)",
     "implementation after cache-layer implement-cache-layer "
     "benchmark-cache-layer"},
    {"Add a login page and a logout endpoint, then write end-to-end tests",
     complexity::complex, "feature",
     "design(frontend plan/deep) > "
     "login-page(frontend general/balanced) logout-endpoint(backend "
     "general/balanced) > "
     "tests(qa general/balanced) > "
     "docs(docs general/balanced)",
     "implementation after login-page logout-endpoint"},
    {"Add the user model then add the signup form and the profile API "
     "then document them",
     complexity::complex, "feature",
     "design(backend plan/deep) > "
     "user-model(backend general/balanced) > "
     "signup-form(frontend general/balanced) profile-api(backend "
     "general/balanced) > "
     "tests(qa general/balanced) > "
     "document-profile-api(docs general/balanced)",
     "implementation after user-model signup-form profile-api"},
    {"Investigate the memory leak in the worker and fix it with a "
     "regression test",
     complexity::moderate, "bug investigation",
     "memory-leak-worker(debugger explore/fast) > "
     "memory-leak-regression(debugger general/balanced) > "
     "tests(qa general/balanced)",
     "implementation after memory-leak-worker memory-leak-regression"},
    {"Fix the crash in the React settings page and the timeout in the "
     "orders API",
     complexity::moderate, "bug investigation",
     "reproduce(debugger explore/fast) > "
     "crash-react-settings(debugger general/balanced) "
     "timeout-orders-api(debugger general/balanced) > "
     "tests(qa general/balanced)",
     "implementation after crash-react-settings timeout-orders-api"},
    {"Audit the backend API and the React frontend for security "
     "vulnerabilities",
     complexity::moderate, "security audit",
     "backend-api(security explore/fast) react-frontend-security(security "
     "explore/fast) > "
     "findings(security plan/deep)",
     ""},
    {"Optimize the slow SQL queries in the reports API and reduce the "
     "React page load time",
     complexity::moderate, "performance",
     "measure(performance explore/fast) > "
     "slow-sql-queries(performance general/balanced) react-page-load(frontend "
     "general/balanced) > "
     "verify(performance explore/fast)",
     "implementation after slow-sql-queries react-page-load"},
    {"Refactor the entire auth system: split the session module, extract "
     "the token store and rename the user service",
     complexity::moderate, "refactor",
     "map(refactorer explore/fast) > "
     "session-module(backend general/balanced) token-store(refactorer "
     "general/balanced) user-service(refactorer general/balanced) > "
     "tests(qa general/balanced)",
     "implementation after session-module token-store user-service"},
    {"Containerize the API with a Dockerfile, deploy it to Kubernetes "
     "with Helm and set up CI in .github/workflows",
     complexity::moderate, "deployment",
     "api-dockerfile(devops general/balanced) > "
     "api-kubernetes-helm(devops general/balanced) ci-github-workflows(devops "
     "general/balanced) > "
     "verify(devops explore/fast)",
     "implementation after api-dockerfile api-kubernetes-helm "
     "ci-github-workflows"},
    {"Build an ETL pipeline: ingest events from Kafka then transform them "
     "then load them into the warehouse",
     complexity::moderate, "data pipeline",
     "events-kafka(data_engineer general/balanced) > "
     "events(data_engineer general/balanced) > "
     "events-warehouse(data_engineer general/balanced) > "
     "tests(qa general/balanced)",
     "implementation after events-kafka events events-warehouse"},
    {"# Billing service\n\n- Add invoices to the API (src/api/invoices.ts)\n"
     "- Add a billing page to the web app (web/billing.tsx)\n"
     "- Email receipts through the mail queue\n"
     "- Write tests for invoices\n",
     complexity::complex, "feature",
     "design(backend plan/deep) > "
     "invoices-api-src(backend general/balanced) billing-page-web(frontend "
     "general/balanced) receipts-mail-queue(backend general/balanced) > "
     "tests-invoices(qa general/balanced) > "
     "docs(docs general/balanced)",
     "implementation after invoices-api-src billing-page-web "
     "receipts-mail-queue"},
    {"# Search\n\n## Phase 1\n- Design the search index schema\n"
     "## Phase 2\n- Build the indexer\n- Build the query API\n"
     "## Phase 3\n- Add the search box to the UI\n",
     complexity::complex, "feature",
     "search-index-schema(data_engineer plan/deep) > "
     "indexer(backend general/balanced) query-api(data_engineer "
     "general/balanced) > "
     "search-box-ui(frontend general/balanced) > "
     "tests(qa general/balanced) > "
     "docs(docs general/balanced)",
     "implementation after search-index-schema indexer query-api "
     "search-box-ui"},
    {"Add CRUD endpoints for: users, orders, products, invoices, payments, "
     "refunds, shipments, coupons, reviews and carts",
     complexity::moderate, "feature",
     "crud-endpoints-users(backend general/balanced) "
     "crud-endpoints-orders(backend general/balanced) "
     "crud-endpoints-products(backend general/balanced) "
     "crud-endpoints-invoices(backend general/balanced) "
     "crud-endpoints-payments(backend general/balanced) "
     "crud-endpoints-refunds(backend general/balanced) "
     "crud-endpoints-shipments(backend general/balanced) > "
     "crud-endpoints-coupons(backend general/balanced) "
     "crud-endpoints-reviews(backend general/balanced) "
     "crud-endpoints-carts(backend general/balanced) > "
     "tests(qa general/balanced) > "
     "docs(docs general/balanced)",
     "implementation after crud-endpoints-users crud-endpoints-orders "
     "crud-endpoints-products crud-endpoints-invoices crud-endpoints-payments "
     "crud-endpoints-refunds crud-endpoints-shipments crud-endpoints-coupons "
     "crud-endpoints-reviews crud-endpoints-carts"},
    {"Build a complete e-commerce platform: a product catalog API, a React "
     "storefront, a checkout flow with Stripe payments, an admin "
     "dashboard, order emails, a Postgres schema with migrations and a "
     "search page, then load test it",
     complexity::epic, "feature",
     "design(backend plan/deep) > "
     "product-catalog-api(backend general/balanced) react-storefront(frontend "
     "general/balanced) checkout-flow-stripe(backend general/balanced) "
     "admin-dashboard(frontend general/balanced) order-emails(backend "
     "general/balanced) postgres-schema-migrations(data_engineer "
     "general/balanced) search-page(frontend general/balanced) > "
     "test(qa general/balanced) > "
     "docs(docs general/balanced)",
     "implementation after product-catalog-api react-storefront "
     "checkout-flow-stripe admin-dashboard order-emails "
     "postgres-schema-migrations search-page"},
    {"Add rate limiting to the API, write integration tests for it and "
     "update the README",
     complexity::moderate, "feature",
     "rate-limiting-api(backend general/balanced) > "
     "integration-tests(qa general/balanced) > "
     "readme(docs general/balanced)",
     "implementation after rate-limiting-api"},
    {"Add login to src/auth.ts and add logout to src/auth.ts and a "
     "settings page in web/settings.tsx",
     complexity::complex, "feature",
     "design(backend plan/deep) > "
     "login-src-auth(backend general/balanced) settings-page-web(frontend "
     "general/balanced) > "
     "logout-src-auth(backend general/balanced) > "
     "tests(qa general/balanced) > "
     "docs(docs general/balanced)",
     "implementation after login-src-auth logout-src-auth settings-page-web"},
  };
  REQUIRE(table.size() >= 20);
  for (auto& x : table) {
    INFO(x.goal);
    auto p = plan_of(x.goal);
    CHECK(p.gp.assessment.level == x.level);
    CHECK(p.gp.assessment.strategy == x.strategy);
    CHECK(shape(p.gp.p) == x.shape);
    std::string gates;
    for (auto& g : p.gp.p.gates) {
      gates += g.id + " after";
      for (auto& a : g.after)
        gates += " " + a;
    }
    CHECK(gates == x.gates);
    // SIMPLE is one workstream, and only SIMPLE is.
    CHECK((p.gp.p.workstreams.size() == 1) == (x.level == complexity::simple));
    // Each gate holds the tests back: they come after it.
    for (auto& g : p.gp.p.gates)
      for (auto& w : p.gp.p.workstreams)
        if (w.persona == "qa")
          CHECK(std::find(g.after.begin(), g.after.end(), w.id)
                == g.after.end());
  }
}

TEST_CASE("a goal is taken apart into steps of deliverables",
          "[protocol][goal]") {
  auto o = outline_goal("Add a login page and a logout endpoint, then write "
                        "end-to-end tests");
  CHECK(o.steps
        == std::vector<strings>{{"Add a login page", "Add a logout endpoint"},
                                {"Write end-to-end tests"}});
  // A pronoun names what came before, and comes after it.
  o = outline_goal("Design the cache layer then implement it and benchmark it");
  CHECK(o.steps
        == std::vector<strings>{{"Design the cache layer"},
                                {"Implement the cache layer"},
                                {"Benchmark the cache layer"}});
  // A list after a colon takes the verb before it; quotes and brackets
  // hold together.
  o = outline_goal("Build a shop: a catalog API (search, filters), a "
                   "\"cart and checkout\" page");
  CHECK(o.steps
        == std::vector<strings>{{"Build a catalog API (search, filters)",
                                 "Build a \"cart and checkout\" page"}});
  // A colon after several deliverables, or before one part, heads
  // nothing: what follows it details the deliverable before it.
  o = outline_goal("Add a login page and a logout endpoint, then write "
                   "tests: all of them");
  CHECK(o.steps
        == std::vector<strings>{{"Add a login page", "Add a logout endpoint"},
                                {"Write tests: all of them"}});
  o = outline_goal("Add a login page, then write tests: unit, end-to-end");
  CHECK(o.steps
        == std::vector<strings>{{"Add a login page"},
                                {"Write tests: unit", "Write end-to-end"}});
  // A pronoun written otherwise than "verb pronoun" is left as it is.
  o = outline_goal("Design the cache layer then fix\tit");
  REQUIRE(o.steps.size() == 2);
  CHECK(o.steps[1] == strings{"Fix\tit"});
  // A sentence without a verb says more about the deliverable before it.
  o = outline_goal("Fix the crash in the parser. It happens on empty input.");
  CHECK(o.steps
        == std::vector<strings>{
          {"Fix the crash in the parser. It happens on empty input"}});
  // A document: its heading names it; nested items detail theirs.
  o = outline_goal("# Billing\n\nSome words.\n\n- Add invoices\n  - with "
                   "PDF export\n- Add refunds\n  that reach the bank\n");
  CHECK(o.document);
  CHECK(o.title == "Billing");
  CHECK(o.steps
        == std::vector<strings>{{"Add invoices; with PDF export",
                                 "Add refunds that reach the bank"}});
}

TEST_CASE("the planner routes tiers, or puts every workstream on one",
          "[protocol][goal]") {
  auto goal = "Explore the codebase then design a plugin API then build it";
  auto p = plan_of(goal);
  CHECK(shape(p.gp.p)
        == "codebase(backend explore/fast) > plugin-api(backend plan/deep) > "
           "build-plugin-api(backend general/balanced) > tests(qa "
           "general/balanced) > docs(docs general/balanced)");
  auto opts = command_agents();
  opts.fixed_tier = true;
  opts.tier = model_tier::fast;
  p = plan_of(goal, opts);
  for (auto& w : p.gp.p.workstreams)
    CHECK(w.model == model_tier::fast);
}

TEST_CASE("planned agents get a fixer at the gate and a synthesis",
          "[protocol][goal]") {
  goal_options opts;
  opts.executor.kind = "anthropic";
  auto p = plan_of("Add a REST endpoint for orders and a React page for "
                   "them",
                   opts);
  REQUIRE(p.gp.p.gates.size() == 1);
  auto& g = p.gp.p.gates[0];
  CHECK(g.remediate.max_attempts == 2);
  CHECK(g.remediate.persona == "debugger");
  CHECK(g.remediate.executor.kind == "anthropic");
  CHECK(p.gp.p.synthesis.by_agent());
  CHECK(p.gp.p.synthesis.model == model_tier::deep);
  for (auto& w : p.gp.p.workstreams)
    CHECK(w.executor.kind == "anthropic");
  // Commands get neither: a fixer would run the same command again.
  auto c = plan_of("Add a REST endpoint for orders and a React page for "
                   "them");
  CHECK(c.gp.p.gates[0].remediate.max_attempts == 0);
  CHECK_FALSE(c.gp.p.synthesis.by_agent());
}

TEST_CASE("no phase of a planned plan is wider than allowed",
          "[protocol][goal]") {
  std::string goal = "Add endpoints for:";
  for (int i = 0; i < 20; ++i)
    goal += " resource" + std::to_string(i) + ",";
  goal += " and health";
  for (int width : {7, 3}) {
    auto opts = command_agents();
    opts.max_phase_width = width;
    auto p = plan_of(goal, opts); // checks every phase's width
    CHECK(p.gp.p.workstreams.size() == 21 + 2);
    size_t widest = 0;
    for (auto& phase : p.a.phases)
      widest = std::max(widest, phase.size());
    CHECK(widest == static_cast<size_t>(width));
  }
}

TEST_CASE("troupe parallel's tasks become one workstream each",
          "[protocol][goal]") {
  auto opts = command_agents();
  opts.executor.run.clear();
  auto p = plan_from_tasks({"explore:find all API routes",
                            "plan: design the cache layer",
                            "review the auth flow", "Explore:list todos"},
                           opts);
  REQUIRE(p.workstreams.size() == 4);
  CHECK(p.workstreams[0].agent == agent_kind::explore);
  CHECK(p.workstreams[0].model == model_tier::fast);
  CHECK(p.workstreams[0].prompt == "find all API routes");
  CHECK(p.workstreams[1].agent == agent_kind::plan);
  CHECK(p.workstreams[1].model == model_tier::deep);
  CHECK(p.workstreams[2].agent == agent_kind::general);
  CHECK(p.workstreams[3].agent == agent_kind::explore);
  // A command without a command runs the task's text.
  CHECK(p.workstreams[0].executor.run == "find all API routes");
  for (auto& w : p.workstreams)
    CHECK(w.depends_on.empty());
  diagnostics d;
  validate_plan(p, {}, d);
  CHECK(d.ok());
}

TEST_CASE("a goal of too many deliverables is refused, not planned",
          "[protocol][goal]") {
  std::string doc = "# Everything\n";
  for (size_t i = 0; i <= max_goal_deliverables; ++i)
    doc += "- Add feature " + std::to_string(i) + " in src/f"
           + std::to_string(i) + ".ts\n";
  auto gp = plan_from_goal(doc, command_agents());
  CHECK(gp.error
        == "301 deliverables, more than 300 in one goal: split it into "
           "several goals");
  CHECK(gp.p.workstreams.empty());
  // Just below the bound it plans, each phase within its width.
  doc.erase(doc.rfind("- Add"));
  auto ok = plan_of(doc);
  CHECK(ok.gp.error.empty());
  CHECK(ok.gp.p.workstreams.size() > 300);
}

TEST_CASE("goals of punctuation, or of many deliverables on one file, plan",
          "[protocol][goal]") {
  // Items that say nothing are left out, however they are nested.
  for (auto goal : {"- .\n- .",
                    "# Rewrite the whole system and integrate "
                    "it\n- .\n- ;",
                    "- ,\n  - .\n- Add a login page"}) {
    auto out = plan_of(goal);
    CHECK_FALSE(out.gp.p.workstreams.empty());
  }
  // Writers of one file wait for each other, one after another.
  std::string doc = "# One file\n";
  for (size_t i = 0; i < max_goal_deliverables; ++i)
    doc += "- Add feature " + std::to_string(i) + " to src/app.ts\n";
  auto out = plan_of(doc);
  size_t writers = 0;
  for (auto& w : out.gp.p.workstreams)
    if (std::find(w.owns.begin(), w.owns.end(), "src/app.ts") != w.owns.end())
      ++writers;
  CHECK(writers == max_goal_deliverables);
}
