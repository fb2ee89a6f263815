"""template.yml (issue 4): valid against AWS's SAM schema (ajv, with a YAML
loader that knows CloudFormation's short tags), wired to the build output,
and the example function behaves as the template says.  Broken variants
must fail the same validator."""
import importlib.util
import json
import os
import re
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TEMPLATE = os.path.join(REPO, "template.yml")
VALIDATOR = os.path.join(HERE, "validate_template.js")


def validate(path, as_json=False):
    cmd = ["node", VALIDATOR] + (["--json"] if as_json else []) + [path]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def with_text(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False)
    f.write(text)
    f.close()
    return f.name


class TemplateValid(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        p = validate(TEMPLATE, as_json=True)
        if p.returncode != 0:
            raise AssertionError("template.yml is not valid:\n" + p.stderr)
        cls.tpl = json.loads(p.stdout)
        with open(TEMPLATE) as f:
            cls.text = f.read()

    def layers(self):
        return {k: v for k, v in self.tpl["Resources"].items()
                if v["Type"] == "AWS::Serverless::LayerVersion"}

    def test_one_layer_per_architecture_from_the_build_output(self):
        layers = self.layers()
        self.assertEqual(len(layers), 2)
        seen = {}
        for name, res in layers.items():
            props = res["Properties"]
            arch = props["CompatibleArchitectures"]
            self.assertEqual(len(arch), 1)
            # The same names build-layer.sh writes.
            self.assertEqual(props["ContentUri"], "build/layer/lambda-tracer-%s.zip" % arch[0])
            self.assertTrue(props["LicenseInfo"])
            self.assertLessEqual(len(props["LicenseInfo"]), 512)  # CloudFormation's limit
            # Created only for the chosen architecture: its condition holds for that value
            # of the Architecture parameter and for no other.
            for chosen in ("x86_64", "arm64"):
                self.assertEqual(self.condition(res["Condition"], {"Architecture": chosen}),
                                 chosen == arch[0], (name, chosen))
            seen[arch[0]] = name
        self.assertEqual(set(seen), {"x86_64", "arm64"})
        self.assertEqual(self.tpl["Parameters"]["Architecture"]["AllowedValues"], ["x86_64", "arm64"])

    def condition(self, name, params):
        """Evaluates one of the template's Conditions for these parameter values (the
        intrinsics a condition may use: Fn::Equals, Not, And, Or, Condition, Ref)."""
        def ev(node):
            if isinstance(node, dict) and len(node) == 1:
                (fn, arg), = node.items()
                if fn == "Ref":
                    return params[arg]
                if fn == "Condition":
                    return ev(self.tpl["Conditions"][arg])
                if fn == "Fn::Equals":
                    return ev(arg[0]) == ev(arg[1])
                if fn == "Fn::Not":
                    return not ev(arg[0])
                if fn == "Fn::And":
                    return all(ev(a) for a in arg)
                if fn == "Fn::Or":
                    return any(ev(a) for a in arg)
                raise AssertionError("unexpected intrinsic in a condition: %r" % (node,))
            return node
        return ev(self.tpl["Conditions"][name])

    def test_example_function_uses_the_layer_and_may_send_segments(self):
        fn = self.tpl["Resources"]["ExampleFunction"]["Properties"]
        self.assertEqual(fn["Architectures"], [{"Ref": "Architecture"}])
        layer_refs = json.dumps(fn["Layers"])
        for name in self.layers():
            self.assertIn('"Ref": "%s"' % name, layer_refs)
        actions = [a for st in fn["Policies"][0]["Statement"] for a in st["Action"]]
        self.assertIn("xray:PutTraceSegments", actions)
        module, func = fn["Handler"].split(".")
        self.assertTrue(os.path.isfile(os.path.join(REPO, fn["CodeUri"], module + ".py")))
        self.assertIn(fn["Tracing"], ("Active", "PassThrough"))

    def test_runs_with_lambdas_default_sampling(self):
        """The example needs no sampling override: PassThrough, and the extension's default
        policy exports what matters even when Lambda's header says Sampled=0."""
        fn = self.tpl["Resources"]["ExampleFunction"]["Properties"]
        self.assertEqual(fn["Tracing"], "PassThrough")
        env = fn["Environment"]["Variables"]
        self.assertNotIn("LAMBDA_TRACER_TRACE_UNSAMPLED", env)
        # Sampling is a parameter whose default is the extension's own default
        # and whose choices are exactly the extension's values.
        self.assertEqual(env["LAMBDA_TRACER_SAMPLING"], {"Ref": "Sampling"})
        param = self.tpl["Parameters"]["Sampling"]
        self.assertEqual(param["Default"], "smart")
        self.assertEqual(set(param["AllowedValues"]), {"smart", "header", "all"})
        with open(os.path.join(REPO, "extension", "config.c")) as f:
            config_c = f.read()
        self.assertIn('"not smart, header or all", "smart"', config_c)

    def test_otlp_headers_come_from_secrets_manager(self):
        """The OTLP headers (an API key) never sit in the template or its
        parameters: a Secrets Manager dynamic reference, and nothing when the
        parameter is empty."""
        env = self.tpl["Resources"]["ExampleFunction"]["Properties"]["Environment"]["Variables"]
        cond, secret, absent = env["LAMBDA_TRACER_OTLP_HEADERS"]["Fn::If"]
        self.assertEqual(absent, {"Ref": "AWS::NoValue"})
        self.assertRegex(secret["Fn::Sub"], r"^\{\{resolve:secretsmanager:\$\{OtlpHeadersSecret\}:SecretString\}\}$")
        self.assertEqual(self.tpl["Conditions"][cond],
                         {"Fn::Not": [{"Fn::Equals": [{"Ref": "OtlpHeadersSecret"}, ""]}]})
        self.assertEqual(self.tpl["Parameters"]["OtlpHeadersSecret"]["Default"], "")
        self.assertNotIn("NoEcho", self.tpl["Parameters"]["OtlpHeadersSecret"])  # a name, not a key

    def test_parameters_reach_the_function(self):
        env = self.tpl["Resources"]["ExampleFunction"]["Properties"]["Environment"]["Variables"]
        refs = {k: v["Ref"] for k, v in env.items() if isinstance(v, dict) and "Ref" in v}
        self.assertEqual(refs.get("LAMBDA_TRACER_EXPORTERS"), "TracerExporters")
        self.assertEqual(refs.get("LAMBDA_TRACER_METRICS"), "Metrics")
        self.assertEqual(self.tpl["Parameters"]["Metrics"]["Default"], "false")
        for name in self.tpl["Parameters"]:
            if name != "Architecture":
                self.assertIn(name, json.dumps(env), "parameter %s is not used by the function" % name)

    def test_settings_are_real_extension_settings(self):
        """Every LAMBDA_TRACER_* variable the template sets is one the
        extension reads (config.c), so a typo cannot slip through."""
        with open(os.path.join(REPO, "extension", "config.c")) as f:
            config_c = f.read()
        env = self.tpl["Resources"]["ExampleFunction"]["Properties"]["Environment"]["Variables"]
        self.assertGreaterEqual(len(env), 3)
        for name in env:
            self.assertRegex(name, r"^LAMBDA_TRACER_[A-Z_]+$")
            self.assertIn('"%s"' % name, config_c)

    def test_outputs(self):
        out = self.tpl["Outputs"]
        self.assertEqual(set(out), {"LayerArn", "FunctionName"})
        self.assertEqual(out["FunctionName"]["Value"], {"Ref": "ExampleFunction"})
        self.assertEqual(out["LayerArn"]["Value"]["Fn::If"][0], "IsArm64")


# Each break: (text in template.yml, replacement, problem expected, exit code).
BREAKS = {
    "misspelt layer property": (
        "      ContentUri: build/layer/lambda-tracer-x86_64.zip",
        "      ContentUrl: build/layer/lambda-tracer-x86_64.zip",
        r"TracerLayerX86/Properties: must have required property 'ContentUri'", 1),
    "unknown serverless type": (
        "Type: AWS::Serverless::LayerVersion", "Type: AWS::Serverless::Layer",
        r"must match a schema in anyOf", 1),
    "wrong type of value": (
        "      CodeUri: layer/example/", "      CodeUri: 42",
        r"ExampleFunction/Properties/CodeUri: must be (string|object)", 1),
    "reference to nothing": (
        "Value: !Ref ExampleFunction", "Value: !Ref ExampleFunctio",
        r'Ref to undefined name "ExampleFunctio"', 1),
    "undefined condition": (
        "    Condition: IsArm64\n", "    Condition: IsArm\n", r'undefined condition "IsArm"', 1),
    "unknown short tag": (
        "!Ref TracerExporters", "!Reff TracerExporters", r"unknown .*tag", 2),
    "no resources": (None, "AWSTemplateFormatVersion: '2010-09-09'\n",
                     r"must have required property 'Resources'", 1),
}


class TemplateBroken(unittest.TestCase):
    """The validator is not a rubber stamp: each break must fail, with the
    problem named.  One validator run checks them all."""

    @classmethod
    def setUpClass(cls):
        with open(TEMPLATE) as f:
            text = f.read()
        cls.paths = {}
        for name, (old, new, _, _) in BREAKS.items():
            if old is not None and old not in text:
                raise AssertionError("%s: %r is not in template.yml" % (name, old))
            cls.paths[name] = with_text(new if old is None else text.replace(old, new, 1))
        p = subprocess.run(["node", VALIDATOR, "--report"] + list(cls.paths.values()),
                           capture_output=True, text=True, timeout=120)
        cls.exit_code = p.returncode
        cls.report = json.loads(p.stdout)

    @classmethod
    def tearDownClass(cls):
        for path in cls.paths.values():
            os.unlink(path)

    def test_each_break_fails(self):
        self.assertEqual(self.exit_code, 2)  # the worst of them: a load error
        for name, (_, _, expect, code) in BREAKS.items():
            with self.subTest(name):
                got = self.report[self.paths[name]]
                self.assertEqual(got["code"], code, got["problems"])
                self.assertTrue(any(re.search(expect, p) for p in got["problems"]), got["problems"])


class ExampleHandler(unittest.TestCase):
    """layer/example/handler.py does what its docstring and the template say."""

    @classmethod
    def setUpClass(cls):
        os.environ["EXAMPLE_INIT_MS"] = "0"
        spec = importlib.util.spec_from_file_location(
            "example_handler", os.path.join(REPO, "layer", "example", "handler.py"))
        cls.mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cls.mod)

    class Context:
        def __init__(self, remaining_ms):
            self.remaining_ms = remaining_ms

        def get_remaining_time_in_millis(self):
            return self.remaining_ms

    def test_actions(self):
        ctx = self.Context(3000)
        self.assertEqual(self.mod.handler({}, ctx), {"action": "fast", "cold_start": True})
        self.assertEqual(self.mod.handler({"action": "fast"}, ctx), {"action": "fast", "cold_start": False})
        t0 = time.monotonic()
        self.assertEqual(self.mod.handler({"action": "slow", "ms": 120}, ctx)["action"], "slow")
        self.assertGreaterEqual(time.monotonic() - t0, 0.12)
        with self.assertRaises(RuntimeError):
            self.mod.handler({"action": "error"}, ctx)
        # A timeout sleeps past whatever time is left.
        t0 = time.monotonic()
        self.mod.handler({"action": "timeout"}, self.Context(100))
        self.assertGreater(time.monotonic() - t0, 0.1)
        self.assertEqual(self.mod.handler("not a dict", ctx)["action"], "fast")

    def run_action(self, event, limit_mb=None):
        """The handler in a child process (crash and oom end it)."""
        code = ("import importlib.util, json, resource, sys\n"
                "lim = %r\n"
                "if lim: resource.setrlimit(resource.RLIMIT_AS, (lim << 20, lim << 20))\n"
                "spec = importlib.util.spec_from_file_location('h', %r)\n"
                "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
                "print('ready', flush=True)\n"
                "m.handler(json.loads(sys.argv[1]), None)\n"
                "print('returned', flush=True)\n") % (limit_mb, os.path.join(REPO, "layer", "example", "handler.py"))
        env = dict(os.environ, EXAMPLE_INIT_MS="0")
        return subprocess.run(["python3", "-c", code, json.dumps(event)], env=env,
                              capture_output=True, text=True, timeout=60)

    def test_crash_ends_the_process(self):
        p = self.run_action({"action": "crash"})
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("ready", p.stdout)
        self.assertNotIn("returned", p.stdout)

    def test_oom_allocates_until_stopped(self):
        # Under a 400 MB address-space limit the allocation loop must hit the
        # limit (Lambda's cgroup kills instead): it never returns on its own.
        p = self.run_action({"action": "oom", "mb": 16}, limit_mb=400)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("MemoryError", p.stderr)
        self.assertNotIn("returned", p.stdout)


if __name__ == "__main__":
    unittest.main()
