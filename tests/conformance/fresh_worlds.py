# --------------------------------------------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for license information.
# --------------------------------------------------------------------------------------------

"""The fixtures of the conformance modules that talk HTTP to a stand-in of their own: one server per module, and a
fresh, empty Azure (a new `World`) behind it for every test."""
from tests.standin.app import Standin
from tests.standin.world import World


def module_standin(tmp_path_factory):
    """A stand-in server for one module (stopping it costs half a second: once per module, not per test)."""
    standin = Standin(str(tmp_path_factory.mktemp('standin'))).start()
    yield standin
    standin.stop()


def fresh_env(standin, make_env, no_violations=True):
    """`make_env(standin)` over a new World; with `no_violations`, the test must have sent no body the swagger
    refuses (tests that send bad bodies on purpose clear theirs)."""
    standin.world = standin.server.world = World()
    standin.sub = standin.world.subscription_id
    env = make_env(standin)
    yield env
    violations = list(env.world.schema_violations)
    env.session.close()
    if no_violations:
        assert violations == []
