"""``planner_node``: instructions in, skills sequenced on the policy node, re-planned on failure.

Subscribes (relative names, remappable):
  ``planner/instruction``  std_msgs/String  what the user asks ("put the red block in the bowl")
  ``task/state``           std_msgs/String  JSON with ``symbolic_state.facts`` (the sim bridge's,
                                             or a perception node's on a real robot)
Publishes:
  ``policy/instruction``   std_msgs/String (latched)  the current skill's instruction, which
                                             re-conditions ``policy_node`` (remap its
                                             ``task/instruction`` here)
  ``planner/plan``         std_msgs/String (latched)  the current plan, JSON
  ``planner/status``       std_msgs/String  JSON: state, step, replans, reason (``status_hz``)

Planning runs the real planner (``robolearn.planner``, preset ``preset`` + ``overrides``)
over the skill library (``library``; seeded from the sim primitives when empty) in a worker
thread.  A step is done when the skill's effects hold in the observed facts; a step that
does not finish within ``step_timeout`` seconds failed, and the planner re-plans from the
observed facts and the steps done so far (up to ``max_replans`` times, then ``failed``).
Composite skills are expanded into their primitives.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future, ThreadPoolExecutor

from rclpy.node import Node
from std_msgs.msg import String

from robolearn.ros_nodes import messages as M


class PlannerNode(Node):
    def __init__(self):
        super().__init__("planner")
        p = self.declare_parameter
        library = p("library", "").value
        preset = p("preset", "planner/default").value
        overrides = [o for o in p("overrides", [""]).value if o]
        self.step_timeout = float(p("step_timeout", 60.0).value)
        max_replans = int(p("max_replans", -1).value)
        status_hz = float(p("status_hz", 2.0).value)

        from robolearn.cli.skills import default_library
        from robolearn.config import compose
        from robolearn.planner import build_planner
        from robolearn.skills.seed import seed_store
        from robolearn.skills.store import SkillStore

        cfg = compose(preset, overrides)
        self.max_replans = cfg.max_replans if max_replans < 0 else max_replans
        store = SkillStore(library or default_library())
        if len(store) == 0:
            seed_store(store)
        self.planner = build_planner(store, cfg)
        self.skills = {s.name: s for s in self.planner.skills()}
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="planner")

        self.facts: list[str] | None = None
        self.instruction = ""
        self.state = "idle"  # idle | planning | executing | succeeded | failed | refused
        self.reason = ""
        self.steps: list = []  # primitive SkillCalls of the current plan
        self.step_i = 0
        self.step_t0 = 0.0
        self.done: list = []  # top-level calls done (for re-planning)
        self.replans = 0
        self.future: Future | None = None
        self.plans: list[dict] = []

        self.pub_instr = self.create_publisher(String, "policy/instruction", M.LATCHED_QOS)
        self.pub_plan = self.create_publisher(String, "planner/plan", M.LATCHED_QOS)
        self.pub_status = self.create_publisher(String, "planner/status", M.STATE_QOS)
        self.create_subscription(String, "planner/instruction", self._on_instruction,
                                 M.STATE_QOS)
        self.create_subscription(String, "task/state", self._on_state, M.STATE_QOS)
        self.create_timer(0.1, self._tick)
        self.create_timer(1.0 / status_hz, self._publish_status)
        self.get_logger().info(f"planner: {cfg.backend}/{cfg.mode}, {len(self.skills)} skills, "
                               f"step timeout {self.step_timeout} s, max re-plans "
                               f"{self.max_replans}")

    # ------------------------------------------------------------------ inputs
    def _on_state(self, msg: String) -> None:
        try:
            self.facts = list(json.loads(msg.data)["symbolic_state"]["facts"])
        except (ValueError, KeyError, TypeError) as e:
            self.get_logger().error(f"task/state is not JSON with symbolic_state.facts: {e}",
                                    throttle_duration_sec=5.0)

    def _on_instruction(self, msg: String) -> None:
        text = msg.data.strip()
        if not text:
            return
        if self.facts is None:
            self.state, self.reason = "failed", "no scene state received on task/state yet"
            self.get_logger().error(self.reason)
            return
        self.instruction, self.done, self.replans, self.plans = text, [], 0, []
        self._start_planning(replan=False)

    # ------------------------------------------------------------------ planning
    def _start_planning(self, replan: bool, failed=None) -> None:
        facts, done = list(self.facts), list(self.done)
        self.state, self.reason = "planning", ""
        if replan:
            self.future = self.pool.submit(self.planner.replan, self.instruction, facts, done,
                                           failed)
        else:
            self.future = self.pool.submit(self.planner.plan, self.instruction, facts)

    def _plan_ready(self, plan) -> None:
        from robolearn.skills.compose import expand

        d = plan.to_dict()
        self.plans.append(d)
        self.pub_plan.publish(String(data=json.dumps(d, default=str)))
        if not plan.ok:
            self.state, self.reason = "refused" if plan.status == "refused" else "failed", \
                f"{plan.status}: {d.get('reason', '')} {d.get('missing', '')}".strip()
            self.get_logger().warning(f"no plan for {self.instruction!r}: {self.reason}")
            return
        self.top = list(plan.steps)
        self.steps = [(top, prim) for top in self.top for prim in expand(top, self.skills)]
        self.step_i = 0
        self.get_logger().info(f"plan: {d.get('text', '')}")
        self._begin_step()

    def _begin_step(self) -> None:
        from robolearn.skills.execute import policy_instruction

        if self.step_i >= len(self.steps):
            self.state = "succeeded"
            self.get_logger().info(f"done: {self.instruction!r}")
            return
        _, prim = self.steps[self.step_i]
        text = policy_instruction(self.skills[prim.skill], prim.kwargs)
        self.pub_instr.publish(String(data=text))
        self.state, self.step_t0 = "executing", time.monotonic()
        self.get_logger().info(f"step {self.step_i + 1}/{len(self.steps)}: {prim} -> {text!r}")

    def _step_done(self, prim) -> bool:
        return self.skills[prim.skill].effects_hold(prim.kwargs, self.facts or [])

    # ------------------------------------------------------------------ loop
    def _tick(self) -> None:
        if self.future is not None:
            if not self.future.done():
                return
            fut, self.future = self.future, None
            try:
                plan = fut.result()
            except Exception as e:  # noqa: BLE001 - a backend error is a failed plan
                self.state, self.reason = "failed", f"planner error: {e}"
                self.get_logger().error(self.reason)
                return
            self._plan_ready(plan)
            return
        if self.state != "executing":
            return
        top, prim = self.steps[self.step_i]
        if self._step_done(prim):
            self.step_i += 1
            if self.step_i >= len(self.steps) or self.steps[self.step_i][0] is not top:
                self.done.append(top)
            self._begin_step()
        elif time.monotonic() - self.step_t0 > self.step_timeout:
            self.get_logger().warning(f"step {prim} did not finish in {self.step_timeout} s")
            if self.replans >= self.max_replans:
                self.state, self.reason = "failed", f"{prim} failed after {self.replans} re-plans"
                return
            self.replans += 1
            self._start_planning(replan=True, failed=top)

    def _publish_status(self) -> None:
        step = None
        if self.state == "executing":
            step = {"index": self.step_i, "of": len(self.steps),
                    "call": str(self.steps[self.step_i][1]),
                    "elapsed_s": round(time.monotonic() - self.step_t0, 1)}
        self.pub_status.publish(String(data=json.dumps({
            "state": self.state, "instruction": self.instruction, "step": step,
            "done": [str(c) for c in self.done], "replans": self.replans,
            "plans": len(self.plans), "reason": self.reason})))

    def destroy_node(self):
        self.pool.shutdown(wait=False, cancel_futures=True)
        super().destroy_node()


def main(args=None) -> None:
    from robolearn.ros_nodes.launching import spin

    spin(PlannerNode, args)


if __name__ == "__main__":
    main()
