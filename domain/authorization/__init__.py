"""Authorization of idTokens (OCPP 2.0.1 blocks C and D): token identity, the
Authorization Cache, the Local Authorization List and the decisions over them. Pure."""
from domain.authorization.authorizer import (  # noqa: F401
    AuthSettings,
    Decision,
    accept_csms_answer,
    decide_remote_start,
    decide_start,
    decide_stop,
    effective_status,
    evse_allowed,
    is_master_pass,
    local_info,
    should_cache,
    stopped_reason,
)
from domain.authorization.cache import AuthCache, CacheHit  # noqa: F401
from domain.authorization.local_list import LocalAuthList  # noqa: F401
from domain.authorization.tokens import same_token, token_key  # noqa: F401
