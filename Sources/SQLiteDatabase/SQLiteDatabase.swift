// Module SQLiteDatabase.
