"""``policy_node``: a trained policy driving an arm, as a ROS 2 lifecycle node.

Lifecycle: ``configure`` loads the checkpoint (``checkpoint`` parameter) and the joint
limits, ``activate`` starts the control loop at ``control_hz``, ``deactivate`` holds and
stops it, ``cleanup`` frees the policy (``autostart:=true`` configures and activates at
startup, for graphs without a lifecycle manager).

Subscribes (relative names, remappable):
  ``joint_states``            sensor_msgs/JointState  arm joints (+ ``gripper``, 0 open..1 closed)
  ``ee_pose``                 geometry_msgs/PoseStamped  end-effector pose (part of the state)
  ``<cam>/image_raw``         sensor_msgs/Image  every camera the policy reads
  ``task/instruction``        std_msgs/String  what the policy is told (``instruction`` parameter overrides)
  ``estop``                   std_msgs/Bool  True latches the emergency stop until ``~/reset_estop``
Publishes:
  ``joint_position_command``  std_msgs/Float64MultiArray  [q_1..q_n, gripper] at ``control_hz``
  ``/diagnostics``            diagnostic_msgs/DiagnosticArray  latency, rate, queue depth, safety counters
Services:
  ``~/reset_estop``           std_srvs/Trigger

Execution is real-time chunking (``robolearn.control.chunking``): the next chunk is
inferred in a background thread from the newest observation while the current one
executes, late actions are dropped and the seam is cross-faded, so the arm never waits on
inference and never jumps.  Chunks keep the time base the policy learned
(``policy_hz``, default: the rate of its training data, stored in the checkpoint): on a
faster control loop they are interpolated onto the control ticks, and the observation
window of an ``n_obs > 1`` policy is sampled at the policy's rate.  Control ticks only
copy references to the newest messages; images are decoded in the inference thread.
Every command passes the joint position/velocity limits (``robolearn.control.safety``;
from the robot's model unless given as parameters).
Stale or missing inputs (older than ``max_age`` s at receipt), an e-stop, or a non-finite
policy output make the node hold the measured position.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64MultiArray, String
from std_srvs.srv import Trigger

from robolearn import keys as K
from robolearn.ros_nodes import messages as M

GRIPPER = "gripper"


class PolicyNode(LifecycleNode):
    def __init__(self):
        super().__init__("policy")
        p = self.declare_parameter
        p("checkpoint", "")
        p("robot", "panda")
        p("control_hz", 10.0)
        p("policy_hz", 0.0)
        p("device", "cpu")
        p("torch_threads", 1)
        p("instruction", "")
        p("max_age", 0.5)
        p("execute_steps", 0)
        p("blend_steps", 4)
        p("velocity_scale", 1.0)
        p("joint_names", [""])
        p("joint_lower", [0.0])
        p("joint_upper", [0.0])
        p("max_velocity", [0.0])
        p("diagnostics_hz", 1.0)
        p("autostart", False)
        self.policy = None
        self._subs, self._timers = [], []
        self._reset_state()
        self.estop = False
        self.pub_cmd = None
        self.pub_diag = None
        self.create_subscription(Bool, "estop", self._on_estop, M.STATE_QOS)
        self.create_service(Trigger, "~/reset_estop", self._on_reset_estop)
        if self.get_parameter("autostart").value:  # configure + activate without a manager
            self._autostart = self.create_timer(0.1, self._do_autostart)

    def _do_autostart(self) -> None:
        self.destroy_timer(self._autostart)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def _reset_state(self) -> None:
        self.latest: dict[str, tuple[float, object]] = {}  # key -> (receipt time, msg)
        self.instruction_topic = ""
        self.tick = 0
        self.future: Future | None = None
        self.future_tick = 0
        self.future_anchor = None
        # (state, image messages) of recent ticks: n_obs of them at the policy's spacing
        self.history: deque = deque()
        self.last_cmd: np.ndarray | None = None
        self.latency_ms: deque = deque(maxlen=100)
        self.tick_times: deque = deque(maxlen=100)
        self.e2e_ms: deque = deque(maxlen=200)  # observation stamp -> first command of its chunk
        self.received: dict[str, int] = {}
        self.obs_stamp = 0.0
        self.future_stamp = 0.0
        self.counts = {"stale_holds": 0, "clamped": 0, "nonfinite": 0, "estop_holds": 0}
        self.status = "inactive"

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        from robolearn.control import JointLimits, RealTimeChunker
        from robolearn.policies.base import check_action_space, load_policy, resolve_policy_dir

        g = lambda n: self.get_parameter(n).value  # noqa: E731
        try:
            if int(g("torch_threads")) > 0:
                # one intra-op thread: on small CPUs more threads fight the executor thread
                # (bench_ros: inference p50 280 ms with 1 thread vs 415 ms with 2 on 2 cores)
                import torch

                torch.set_num_threads(int(g("torch_threads")))
            path = resolve_policy_dir(g("checkpoint"))
            self.policy = load_policy(path, g("device"))
            c = self.policy.config
            self.cameras = [K.camera_name(k) for k in c.image_keys]
            if float(g("control_hz")) <= 0 or float(g("policy_hz")) < 0:
                raise ValueError(f"control_hz ({g('control_hz')}) must be > 0 and policy_hz "
                                 f"({g('policy_hz')}) >= 0")
            self.dt = 1.0 / float(g("control_hz"))
            policy_hz = float(g("policy_hz")) or float(getattr(c, "fps", 0.0))
            if not policy_hz:
                policy_hz = 1.0 / self.dt
                self.get_logger().warning(
                    f"the checkpoint does not record its data rate (trained before policy.fps "
                    f"existed): one chunk step per control tick at {policy_hz:g} Hz; set "
                    f"policy_hz to the rate of the training data if that differs")
            ratio = (1.0 / self.dt) / policy_hz
            # observation window at the policy's spacing: every `stride`-th control tick
            self.stride = max(1, round(ratio))
            if list(g("joint_lower")) != [0.0]:
                self.limits = JointLimits(g("joint_lower"), g("joint_upper"), g("max_velocity"))
            else:
                self.limits = JointLimits.for_robot(g("robot"))
            names = [n for n in g("joint_names") if n]
            if not names:
                from robolearn.envs.robots import get_robot

                names = list(get_robot(g("robot")).arm_joints)
            if len(names) != self.limits.n_joints:
                raise ValueError(f"{len(names)} joint_names for {self.limits.n_joints} limits")
            self.arm_joints = names
            check_action_space(self.policy, "joint_pos", "this node (joint position commands)")
            if c.action_dim != self.limits.n_joints + 1:
                raise ValueError(f"the policy's actions have {c.action_dim} values; this arm "
                                 f"takes {self.limits.n_joints} joints + gripper")
            steps = int(g("execute_steps")) or c.n_action_steps
            self.chunker = RealTimeChunker(c.horizon, steps, int(g("blend_steps")), ratio)
        except (FileNotFoundError, ValueError, KeyError) as e:
            self.get_logger().error(f"configure failed: {e}")
            self.policy = None
            return TransitionCallbackReturn.FAILURE
        self._reset_state()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy_infer")
        self._subs = [
            self.create_subscription(JointState, "joint_states",
                                     lambda m: self._store("joints", m), M.JOINT_QOS),
            self.create_subscription(PoseStamped, "ee_pose",
                                     lambda m: self._store("ee", m), M.JOINT_QOS),
            self.create_subscription(String, "task/instruction",
                                     self._on_instruction, M.LATCHED_QOS)]
        for cam in self.cameras:
            self._subs.append(self.create_subscription(
                Image, f"{cam}/image_raw", lambda m, cam=cam: self._store("cam:" + cam, m),
                M.IMAGE_QOS))
        self.pub_cmd = self.create_lifecycle_publisher(Float64MultiArray,
                                                       "joint_position_command", M.STATE_QOS)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.get_logger().info(f"configured: {self.policy.name} from {path}, cameras "
                               f"{self.cameras}, control {1 / self.dt:g} Hz, policy "
                               f"{policy_hz:g} Hz, chunks of {self.chunker.horizon} ticks "
                               f"executing {self.chunker.execute_steps}")
        self.status = "configured"
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # the watchdog runs on wall time
        self.chunker.reset()
        self._timers = [self.create_timer(self.dt, self._control, clock=steady),
                        self.create_timer(1.0 / float(self.get_parameter("diagnostics_hz").value),
                                          self._publish_diagnostics, clock=steady)]
        self.status = "active"
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._hold("deactivated")
        for t in self._timers:
            self.destroy_timer(t)
        self._timers = []
        self.status = "configured"
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        for s in self._subs:
            self.destroy_subscription(s)
        self._subs = []
        if self.pub_cmd is not None:
            self.destroy_lifecycle_publisher(self.pub_cmd)
            self.pub_cmd = None
        self.pool.shutdown(wait=True)
        self.policy = None
        self.status = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        if getattr(self, "pool", None) is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        return TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------------ inputs
    def _store(self, key: str, msg) -> None:
        self.latest[key] = (time.monotonic(), msg)
        kind = key.split(":")[0]  # joints, ee, cam
        self.received[kind] = self.received.get(kind, 0) + 1

    def _on_instruction(self, msg: String) -> None:
        if msg.data != self.instruction_topic:
            self.instruction_topic = msg.data
            if self.policy is not None:
                self.chunker.reset()  # a new instruction: stop executing the old chunk

    def _on_estop(self, msg: Bool) -> None:
        if msg.data and not self.estop:
            self.estop = True
            self.get_logger().error("E-STOP latched: holding position until ~/reset_estop")
            if self.policy is not None:
                self.chunker.reset()
                self.history.clear()

    def _on_reset_estop(self, request, response):
        self.estop = False
        if self.policy is not None:
            self.chunker.reset()
        response.success, response.message = True, "e-stop reset"
        self.get_logger().warning("e-stop reset: resuming control")
        return response

    def _instruction(self) -> str:
        return self.get_parameter("instruction").value or self.instruction_topic

    def _inputs(self):
        """(state vector, image messages, None) when every input is fresh and well-formed,
        else (.., .., problem).  Images stay messages here: decoding them is the inference
        thread's job, so a control tick costs microseconds whatever the camera size."""
        now = time.monotonic()
        max_age = float(self.get_parameter("max_age").value)
        need = ["joints", "ee"] + ["cam:" + c for c in self.cameras]
        missing = [k for k in need if k not in self.latest]
        if missing:
            return None, None, f"no message yet on {missing}"
        stale = [k for k in need if now - self.latest[k][0] > max_age]
        if stale:
            return None, None, f"stale inputs {stale} (older than max_age={max_age} s)"
        js: JointState = self.latest["joints"][1]
        pos = dict(zip(js.name, js.position))
        if any(n not in pos for n in self.arm_joints):
            return None, None, f"joint_states lacks {[n for n in self.arm_joints if n not in pos]}"
        q = np.array([pos[n] for n in self.arm_joints])
        grip = float(pos.get(GRIPPER, 0.0))
        ee: PoseStamped = self.latest["ee"][1]
        p, o = ee.pose.position, ee.pose.orientation
        state = np.r_[q, grip, p.x, p.y, p.z, o.w, o.x, o.y, o.z].astype(np.float32)
        images = {c: self.latest["cam:" + c][1] for c in self.cameras}
        bad = {c: why for c, m in images.items() if (why := M.image_problem(m))}
        if bad:
            return None, None, f"bad images {bad}"
        stamped = list(images.values()) or [js]
        self.obs_stamp = min(M.to_seconds(m.header.stamp) for m in stamped)
        return state, images, None

    # ------------------------------------------------------------------ control loop
    def _infer(self, history: list, instruction: str) -> np.ndarray:
        import torch

        from robolearn.control.window import window_batch

        n_obs = self.policy.config.n_obs
        steps = [{K.OBS_STATE: s, **{K.image_key(c): np.ascontiguousarray(
                    M.image_array(m).transpose(2, 0, 1)) for c, m in ims.items()}}
                 for s, ims in history[::-self.stride][:n_obs][::-1]]
        obs = window_batch([steps], n_obs, [instruction])
        t0 = time.perf_counter()
        with torch.no_grad():
            chunk = self.policy.predict_action_chunk(self.policy.on_device(obs))
        self.latency_ms.append((time.perf_counter() - t0) * 1000)
        return chunk[0].float().cpu().numpy()

    def _control(self) -> None:
        self.tick_times.append(time.monotonic())
        tick = self.tick
        self.tick += 1
        state, images, problem = self._inputs()
        measured = None if state is None else state[: self.limits.n_joints + 1]
        if self.estop:
            self.counts["estop_holds"] += 1
            self._hold("e-stop", measured)
            return
        if problem is not None:
            self.counts["stale_holds"] += 1
            self.chunker.reset()
            self.history.clear()
            self.get_logger().warning(f"holding: {problem}", throttle_duration_sec=2.0)
            self._hold(problem, measured)
            return
        if len(self.history) == (self.policy.config.n_obs - 1) * self.stride + 1:
            self.history.popleft()
        self.history.append((state, images))
        # 1. a finished inference joins the plan; 2. request the next chunk when due
        new_chunk_stamp = None
        if self.future is not None and self.future.done():
            fut, self.future = self.future, None
            try:
                chunk = fut.result()
            except Exception as e:  # noqa: BLE001 - report any inference failure, keep holding
                self.get_logger().error(f"inference failed: {e}")
                chunk = None
            if chunk is not None:
                if not np.all(np.isfinite(chunk)):
                    self.counts["nonfinite"] += 1
                    self.get_logger().error("policy output contains NaN/inf: holding",
                                            throttle_duration_sec=2.0)
                    self.chunker.reset()
                else:
                    self.chunker.add_chunk(chunk, self.future_tick, tick, self.future_anchor)
                    new_chunk_stamp = self.future_stamp
        submitted = self.future is None and self.chunker.needs_chunk(tick)
        if submitted:
            self.future_tick, self.future_stamp = tick, self.obs_stamp
            self.future = self.pool.submit(self._infer, list(self.history), self._instruction())
        # 3. the action for this tick (hold until the first chunk arrives)
        action = self.chunker.pop(tick)
        if action is None:
            self._hold("waiting for the first chunk", measured)
        else:
            self._command(action, measured)
        if submitted:  # the command of the observation's tick: where the next chunk ramps from
            self.future_anchor = self.last_cmd
        if action is None:
            return
        if new_chunk_stamp is not None:  # end-to-end: input stamp -> its chunk's first command
            now = self.get_clock().now().nanoseconds * 1e-9
            self.e2e_ms.append((now - new_chunk_stamp) * 1e3)
        self.status = "running"

    def _command(self, action: np.ndarray, measured: np.ndarray | None) -> None:
        """Publish ``action`` through the joint position/velocity limits."""
        last = self.last_cmd if self.last_cmd is not None else measured
        safe, rep = self.limits.apply(action, last, self.dt,
                                      float(self.get_parameter("velocity_scale").value))
        if rep.clamped:
            self.counts["clamped"] += 1
            self.get_logger().warning(f"command clamped (position: joints {rep.position_clamped}, "
                                      f"velocity: joints {rep.velocity_clamped})",
                                      throttle_duration_sec=2.0)
        self._publish(safe)

    def _hold(self, why: str, measured: np.ndarray | None = None) -> None:
        """Command the measured position (or the last command when nothing is measured)."""
        self.status = f"holding: {why}"
        target = measured if measured is not None else self.last_cmd
        if target is not None and self.pub_cmd is not None:
            self._publish(np.asarray(target, float))

    def _publish(self, cmd: np.ndarray) -> None:
        self.last_cmd = np.asarray(cmd, float)
        self.pub_cmd.publish(Float64MultiArray(data=[float(v) for v in cmd]))

    def _publish_diagnostics(self) -> None:
        st = DiagnosticStatus(name="robolearn/policy_node", hardware_id=self.get_name())
        lat = sorted(self.latency_ms)
        ticks = list(self.tick_times)
        rate = (len(ticks) - 1) / (ticks[-1] - ticks[0]) if len(ticks) > 2 else 0.0
        jitter = np.abs(np.diff(ticks) - self.dt) * 1e3 if len(ticks) > 2 else np.array([np.nan])
        e2e = np.array(self.e2e_ms) if self.e2e_ms else np.array([np.nan])
        values = {
            "status": self.status, "estop": str(self.estop),
            "instruction": self._instruction(),
            "inference_ms_p50": f"{lat[len(lat) // 2]:.1f}" if lat else "nan",
            "inference_ms_max": f"{lat[-1]:.1f}" if lat else "nan",
            "control_rate_hz": f"{rate:.2f}",
            "tick_jitter_ms_p50": f"{np.percentile(jitter, 50):.2f}",
            "tick_jitter_ms_p99": f"{np.percentile(jitter, 99):.2f}",
            "e2e_ms_p50": f"{np.percentile(e2e, 50):.1f}",
            "e2e_ms_p99": f"{np.percentile(e2e, 99):.1f}",
            **{f"received_{k}": str(v) for k, v in self.received.items()},
            "queue_depth": str(self.chunker.remaining(self.tick)),
            "chunks": str(self.chunker.stats.chunks),
            "starved_ticks": str(self.chunker.stats.starved_ticks),
            "dropped_actions": str(self.chunker.stats.dropped_actions),
            **{k: str(v) for k, v in self.counts.items()}}
        st.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        if self.estop or self.status.startswith("holding"):
            st.level, st.message = DiagnosticStatus.WARN, self.status
        else:
            st.level, st.message = DiagnosticStatus.OK, self.status
        if self.counts["nonfinite"]:
            st.level = DiagnosticStatus.ERROR
            st.message = f"{self.status}; {self.counts['nonfinite']} non-finite policy outputs"
        msg = DiagnosticArray(status=[st])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)


def main(args=None) -> None:
    from robolearn.ros_nodes.launching import spin

    spin(PolicyNode, args)


if __name__ == "__main__":
    main()
