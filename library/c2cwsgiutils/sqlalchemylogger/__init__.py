"""Write log records to a database table: see :mod:`c2cwsgiutils.sqlalchemylogger.handlers`.

.. versionadded:: 6.0
"""

from c2cwsgiutils.sqlalchemylogger._filters import ContainsExpression, DoesNotContainExpression
from c2cwsgiutils.sqlalchemylogger.handlers import SQLAlchemyHandler

__all__ = ["ContainsExpression", "DoesNotContainExpression", "SQLAlchemyHandler"]
